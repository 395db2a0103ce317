'use strict';
/**
 * Node side of tests/bench/run: one client per process, the same phases as the Rust and
 * Python harnesses, one JSON line on stdout.
 *
 *   node bench.js <claw|claw-client|fetch|openai> <base_url …/v1> <stream_base_url …/v1>
 *
 * claw         claw-llm-client's free functions (process.env read at every call: the drop-in)
 * claw-client  claw-llm-client's createClient({baseUrl, apiKey})
 * fetch        fetch_client.js, written the way the legacy llm_client.js works
 * openai       the `openai` npm package
 *
 * Phases (every loop bounded by a count and by time): seq, conc (BENCH_CONC_CALLS calls,
 * BENCH_INFLIGHT in flight, RSS after BENCH_MARK and at the end, calls/s and CPU measured from the
 * mark), stream (1000-chunk streams, every chunk parsed), embed; each timed phase lasts
 * BENCH_SECONDS.
 */

const fs = require('node:fs');
const path = require('node:path');

const MODEL = 'bench-model';
const EMBED_MODEL = 'bench-embed';
const API_KEY = 'sk-bench';
const CHUNKS = 1000;
const DIMS = 1024;
const PHASE_CAP_MS = 90_000;

const num = (name, dflt) => Number(process.env[name] || dflt);
const SECONDS = num('BENCH_SECONDS', 3);
const TOTAL = num('BENCH_CONC_CALLS', 10_000);
const INFLIGHT = num('BENCH_INFLIGHT', 64);
const MARK = num('BENCH_MARK', 1_000);

const messages = () => [{ role: 'user', content: 'Say hi' }];

/** User + system CPU of the process (all threads), µs. */
function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** A field of /proc/self/status in kB (VmRSS: now, VmHWM: peak). */
function statusKb(field) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

const contentLen = (r) => (r.choices[0].message.content || '').length;
const vectorLen = (r) => r.data[0].embedding.length;

function makePeer(name, base, streamBase) {
  if (name === 'claw' || name === 'claw-client') {
    const claw = require(path.resolve(__dirname, '../../..'));
    const streamer = claw.createClient({ baseUrl: streamBase, apiKey: API_KEY });
    let api = claw;
    if (name === 'claw') {
      process.env.LLM_BASE_URL = base;
      process.env.LLM_API_KEY = API_KEY;
    } else {
      api = claw.createClient({ baseUrl: base, apiKey: API_KEY });
    }
    let observed = null;
    if (name === 'claw-client') {
      // The same calls with an event listener (it does nothing), and with spans exported to
      // nginx's /otlp/v1/traces.
      const listened = claw.createClient({ baseUrl: base, apiKey: API_KEY, onEvent: () => {} });
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `${base.replace(/\/v1$/, '')}/otlp`;
      const traced = claw.createClient({ baseUrl: base, apiKey: API_KEY });
      delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      observed = {
        listened: async () => contentLen(await listened.callSpecificModel(MODEL, messages(), { temperature: 0 })),
        traced: async () => contentLen(await traced.callSpecificModel(MODEL, messages(), { temperature: 0 })),
        flush: () => claw.flushTelemetry(5000),
      };
    }
    return {
      observed,
      chat: async () => contentLen(await api.callSpecificModel(MODEL, messages(), { temperature: 0 })),
      embed: async () => vectorLen(await api.embed(EMBED_MODEL, 'hello world')),
      stream: async () => {
        const s = await streamer.callSpecificModel(MODEL, messages(), { stream: true });
        let n = 0;
        for await (const chunk of s) if (chunk) n++;
        return n;
      },
    };
  }
  if (name === 'fetch') {
    process.env.LLM_BASE_URL = base;
    process.env.LLM_API_KEY = API_KEY;
    const legacy = require('./fetch_client');
    return {
      chat: async () => contentLen(await legacy.callSpecificModel(MODEL, messages(), { temperature: 0 })),
      embed: async () => vectorLen(await legacy.embed(EMBED_MODEL, 'hello world')),
      stream: null, // the legacy client cannot stream
    };
  }
  if (name === 'openai') {
    const OpenAI = require('openai');
    const client = new OpenAI({ baseURL: base, apiKey: API_KEY });
    const streamer = new OpenAI({ baseURL: streamBase, apiKey: API_KEY });
    return {
      chat: async () =>
        contentLen(await client.chat.completions.create({ model: MODEL, messages: messages(), temperature: 0 })),
      embed: async () =>
        vectorLen(
          await client.embeddings.create({ model: EMBED_MODEL, input: 'hello world', encoding_format: 'float' }),
        ),
      stream: async () => {
        const s = await streamer.chat.completions.create({ model: MODEL, messages: messages(), stream: true });
        let n = 0;
        for await (const chunk of s) if (chunk) n++;
        return n;
      },
    };
  }
  throw new Error(`unknown client ${name}`);
}

/** Runs `op` sequentially for SECONDS after `warm` runs: [runs/s, CPU µs/run, units/s]. */
async function timed(warm, op) {
  for (let i = 0; i < warm; i++) await op();
  const t0 = performance.now();
  const c0 = cpuUs();
  let runs = 0;
  let units = 0;
  const limit = Math.min(SECONDS * 1000, PHASE_CAP_MS);
  while (performance.now() - t0 < limit && runs < 10_000_000) {
    units += await op();
    runs++;
  }
  const dt = (performance.now() - t0) / 1000;
  return [runs / dt, (cpuUs() - c0) / runs, units / dt];
}

async function main() {
  const [name, base, streamBase] = process.argv.slice(2);
  const peer = makePeer(name, base, streamBase);

  // Check the answers once, so a broken route cannot pass as a fast one.
  if ((await peer.chat()) === 0) throw new Error('empty chat answer');
  if ((await peer.embed()) !== DIMS) throw new Error('embedding of the wrong size');
  if (peer.stream && (await peer.stream()) !== CHUNKS) throw new Error('stream with the wrong number of chunks');

  // 1. Sequential calls (one connection in every client's pool).
  const [seqCps, seqCpu] = await timed(100, peer.chat);

  // 2. 64 in flight; the first MARK calls open and fill the pool.
  let issued = 0;
  let done = 0;
  let mark = null;
  const started = performance.now();
  const worker = async () => {
    while (issued++ < TOTAL && performance.now() - started < PHASE_CAP_MS) {
      await peer.chat();
      if (++done === MARK) mark = { at: performance.now(), cpu: cpuUs(), rssKb: statusKb('VmRSS') };
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  const end = performance.now();
  const endCpu = cpuUs();
  const rssEnd = statusKb('VmRSS');
  if (!mark) throw new Error('the concurrent phase never reached the mark');
  const measured = done - MARK;

  // 3-4. Streams, embeddings.
  const [streamsPs, , streamCps] = peer.stream ? await timed(2, peer.stream) : [null, null, null];
  const [embedPs, embedCpu] = await timed(20, peer.embed);

  // 5. claw-client only: sequential calls with an event listener, and with OTLP export on.
  let observed = {};
  if (peer.observed) {
    const [lPs, lCpu] = await timed(100, peer.observed.listened);
    const [tPs, tCpu] = await timed(100, peer.observed.traced);
    peer.observed.flush();
    observed = { listener_us: 1e6 / lPs, listener_cpu_us: lCpu, otel_us: 1e6 / tPs, otel_cpu_us: tCpu };
  }

  return {
    ...observed,
    seq_cps: seqCps,
    seq_cpu_us: seqCpu,
    conc_cps: measured / ((end - mark.at) / 1000),
    conc_cpu_us: (endCpu - mark.cpu) / measured,
    conc_calls: done,
    stream_cps: streamCps,
    streams_ps: streamsPs,
    embed_ps: embedPs,
    embed_cpu_us: embedCpu,
    rss_mark_kb: mark.rssKb,
    rss_end_kb: rssEnd,
    peak_rss_kb: statusKb('VmHWM'),
  };
}

const client = process.argv[2];
main().then(
  (r) => {
    process.stdout.write(JSON.stringify({ ...r, lang: 'node', client }) + '\n');
    process.exit(0);
  },
  (e) => {
    process.stdout.write(JSON.stringify({ lang: 'node', client, error: String((e && e.stack) || e) }) + '\n');
    process.exit(1);
  },
);
