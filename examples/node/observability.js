// What a skill's calls did: the tokens it spent (from the `call` events), every retry (from the
// `attempt` events), and the per-model statistics in Prometheus' text format.
//
//   LLM_BASE_URL=http://127.0.0.1:3000 LLM_API_KEY=sk-... node examples/node/observability.js
//
// Set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318) and each call is also an
// OpenTelemetry span sent to that collector.
'use strict';

const llm = require('claw-llm-client');

async function main() {
  const model = process.env.LLM_MODEL_ID || 'qwen-plus';
  let spent = 0;
  llm.events.on('call', (e) => {
    spent += e.usage ? e.usage.total_tokens : 0;
  });
  llm.events.on('attempt', (e) => {
    if (e.retryDelayMs !== null) console.log(`retrying ${e.model} in ${e.retryDelayMs} ms after ${e.code}`);
  });
  for (const q of ['Name a colour.', 'Name a fruit.', 'Name a city.']) {
    const r = await llm.callSpecificModel(model, [{ role: 'user', content: q }]);
    console.log(`${q} -> ${r.choices[0].message.content}`);
  }
  llm.flushEvents();
  const s = llm.stats().models[model];
  console.log(`spent ${spent} tokens in ${s.calls} calls (p50 ${s.latencyMs.p50.toFixed(1)} ms)`);
  console.log(llm.metricsText().split('\n').filter((l) => l.startsWith('claw_llm_calls_total')).join('\n'));
}

main().catch((err) => {
  console.log(`failed: ${err.code}: ${err.message}`);
  process.exitCode = 1;
});
