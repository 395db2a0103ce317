//! Rust side of `tests/bench/run`: one client per process, the same phases as the Node and
//! Python harnesses, one JSON line on stdout.
//!
//!     claw-llm-bench <claw|reqwest|async-openai> <base_url …/v1> <stream_base_url …/v1>
//!
//! Phases (every loop bounded by a count and by time):
//! 1. `seq`: sequential chat calls for BENCH_SECONDS.
//! 2. `conc`: BENCH_CONC_CALLS chat calls (10,000) with BENCH_INFLIGHT (64) in flight; RSS after
//!    the first BENCH_MARK (1,000) and after all; calls/s and CPU per call measured from the mark
//!    to the end (the first calls open the 64 connections).
//! 3. `stream`: 1000-chunk streams, one after another, for BENCH_SECONDS; every chunk parsed.
//! 4. `embed`: sequential 1024-float embeddings for BENCH_SECONDS.

use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

const MODEL: &str = "bench-model";
const EMBED_MODEL: &str = "bench-embed";
const API_KEY: &str = "sk-bench";
const CHUNKS: usize = 1000;
const DIMS: usize = 1024;
/// No phase runs longer than this, whatever the client's speed.
const PHASE_CAP: Duration = Duration::from_secs(90);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU of this process (all threads), in microseconds.
fn cpu_us() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A field of /proc/self/status in kB (VmRSS: now, VmHWM: peak).
fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn messages() -> Value {
    json!([{"role": "user", "content": "Say hi"}])
}

// One per process: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Peer {
    Claw {
        chat: claw_llm::Client,
        stream: claw_llm::Client,
        /// Base URL refused (nothing listens on its port), the real one as its fallback, and a
        /// breaker that never opens: every call fails over from a refused connection.
        failover: claw_llm::Client,
        /// The same gateway with an event listener attached (it does nothing).
        listened: claw_llm::Client,
        /// The same gateway with OpenTelemetry spans exported to nginx's `/otlp/v1/traces`.
        traced: claw_llm::Client,
    },
    Reqwest {
        http: reqwest::Client,
        chat_url: String,
        embed_url: String,
        stream_url: String,
    },
    OpenAi {
        chat: async_openai::Client<async_openai::config::OpenAIConfig>,
        stream: async_openai::Client<async_openai::config::OpenAIConfig>,
    },
}

impl Peer {
    fn new(name: &str, base: &str, stream_base: &str) -> Res<Peer> {
        Ok(match name {
            "claw" => {
                let client = |b: &str| {
                    claw_llm::Config::builder()
                        .base_url(b)
                        .api_key(API_KEY)
                        .ignore_env(true)
                        .build()
                        .and_then(claw_llm::Client::new)
                        .map_err(|e| e.to_string())
                };
                let refused = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(|e| e.to_string())?;
                let failover = claw_llm::Config::builder()
                    .base_url(format!("http://{refused}/v1"))
                    .api_key(API_KEY)
                    .fallback(base, API_KEY)
                    .breaker_failures(u32::MAX)
                    .ignore_env(true)
                    .build()
                    .and_then(claw_llm::Client::new)
                    .map_err(|e| e.to_string())?;
                let listened = claw_llm::Config::builder()
                    .base_url(base)
                    .api_key(API_KEY)
                    .ignore_env(true)
                    .on_event(|e| {
                        std::hint::black_box(e);
                    })
                    .build()
                    .and_then(claw_llm::Client::new)
                    .map_err(|e| e.to_string())?;
                let collector = format!("{}/otlp", base.trim_end_matches("/v1"));
                let traced = claw_llm::Config::builder()
                    .base_url(base)
                    .api_key(API_KEY)
                    .build_with(|n| (n == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| collector.clone()))
                    .and_then(claw_llm::Client::new)
                    .map_err(|e| e.to_string())?;
                Peer::Claw {
                    chat: client(base)?,
                    stream: client(stream_base)?,
                    failover,
                    listened,
                    traced,
                }
            }
            "reqwest" => Peer::Reqwest {
                http: reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .build()
                    .map_err(|e| e.to_string())?,
                chat_url: format!("{base}/chat/completions"),
                embed_url: format!("{base}/embeddings"),
                stream_url: format!("{stream_base}/chat/completions"),
            },
            "async-openai" => {
                use async_openai::config::OpenAIConfig;
                let client = |b: &str| {
                    async_openai::Client::with_config(
                        OpenAIConfig::new().with_api_base(b).with_api_key(API_KEY),
                    )
                };
                Peer::OpenAi {
                    chat: client(base),
                    stream: client(stream_base),
                }
            }
            other => return Err(format!("unknown client {other}")),
        })
    }

    /// One chat completion; returns the length of the answer's content (so nothing is skipped).
    async fn chat(&self) -> Res<usize> {
        match self {
            Peer::Claw { chat, .. } => {
                let params = json!({"temperature": 0})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let v = chat
                    .call_specific_model(MODEL, messages(), params, Default::default())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(content_len(&v))
            }
            Peer::Reqwest { http, chat_url, .. } => {
                let body = json!({"model": MODEL, "messages": messages(), "temperature": 0});
                let v = post_json(http, chat_url, &body).await?;
                Ok(content_len(&v))
            }
            Peer::OpenAi { chat, .. } => {
                use async_openai::types::chat::{
                    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
                };
                let req = CreateChatCompletionRequestArgs::default()
                    .model(MODEL)
                    .temperature(0.0)
                    .messages([ChatCompletionRequestUserMessageArgs::default()
                        .content("Say hi")
                        .build()
                        .map_err(|e| e.to_string())?
                        .into()])
                    .build()
                    .map_err(|e| e.to_string())?;
                let r = chat.chat().create(req).await.map_err(|e| e.to_string())?;
                Ok(r.choices[0].message.content.as_deref().map_or(0, str::len))
            }
        }
    }

    /// One embedding of one string; returns the vector's length.
    async fn embed(&self) -> Res<usize> {
        match self {
            Peer::Claw { chat, .. } => {
                let v = chat
                    .embed(
                        "bench-embed",
                        json!("hello world"),
                        Default::default(),
                        Default::default(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(v["data"][0]["embedding"].as_array().map_or(0, Vec::len))
            }
            Peer::Reqwest {
                http, embed_url, ..
            } => {
                let body = json!({"model": EMBED_MODEL, "input": "hello world", "encoding_format": "float"});
                let v = post_json(http, embed_url, &body).await?;
                Ok(v["data"][0]["embedding"].as_array().map_or(0, Vec::len))
            }
            Peer::OpenAi { chat, .. } => {
                use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EncodingFormat};
                let req = CreateEmbeddingRequestArgs::default()
                    .model(EMBED_MODEL)
                    .input("hello world")
                    .encoding_format(EncodingFormat::Float)
                    .build()
                    .map_err(|e| e.to_string())?;
                let r = chat
                    .embeddings()
                    .create(req)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(r.data[0].embedding.len())
            }
        }
    }

    /// One streamed completion read to the end; returns the number of chunks (each parsed).
    async fn stream(&self) -> Res<usize> {
        let mut n = 0;
        match self {
            Peer::Claw { stream, .. } => {
                let mut s = stream
                    .stream(MODEL, messages(), Default::default(), Default::default())
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(chunk) = s.next().await {
                    chunk.map_err(|e| e.to_string())?;
                    n += 1;
                }
            }
            Peer::Reqwest {
                http, stream_url, ..
            } => {
                use eventsource_stream::Eventsource;
                let body = json!({"model": MODEL, "messages": messages(), "stream": true});
                let resp = send(http, stream_url, &body).await?;
                let mut events = resp.bytes_stream().eventsource();
                while let Some(ev) = events.next().await {
                    let ev = ev.map_err(|e| e.to_string())?;
                    if ev.data == "[DONE]" {
                        break;
                    }
                    let _: Value = serde_json::from_str(&ev.data).map_err(|e| e.to_string())?;
                    n += 1;
                }
            }
            Peer::OpenAi { stream, .. } => {
                use async_openai::types::chat::{
                    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
                };
                let req = CreateChatCompletionRequestArgs::default()
                    .model(MODEL)
                    .messages([ChatCompletionRequestUserMessageArgs::default()
                        .content("Say hi")
                        .build()
                        .map_err(|e| e.to_string())?
                        .into()])
                    .build()
                    .map_err(|e| e.to_string())?;
                let mut s = stream
                    .chat()
                    .create_stream(req)
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(chunk) = s.next().await {
                    chunk.map_err(|e| e.to_string())?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

fn content_len(v: &Value) -> usize {
    v["choices"][0]["message"]["content"]
        .as_str()
        .map_or(0, str::len)
}

async fn send(http: &reqwest::Client, url: &str, body: &Value) -> Res<reqwest::Response> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let resp = http
        .post(url)
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    Ok(resp)
}

async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> Res<Value> {
    let resp = send(http, url, body).await?;
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// Runs `op` sequentially for `secs` after `warm` unmeasured runs; returns (runs/s, CPU µs/run,
/// units/s) where units are what `op` returns (chunks for a stream).
async fn timed<F, Fut>(warm: usize, secs: f64, mut op: F) -> Res<(f64, f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Res<usize>>,
{
    for _ in 0..warm {
        op().await?;
    }
    let (t0, c0) = (Instant::now(), cpu_us());
    let (mut runs, mut units) = (0u64, 0u64);
    while t0.elapsed().as_secs_f64() < secs && t0.elapsed() < PHASE_CAP && runs < 10_000_000 {
        units += op().await? as u64;
        runs += 1;
    }
    let dt = t0.elapsed().as_secs_f64();
    let cpu = (cpu_us() - c0) as f64;
    Ok((runs as f64 / dt, cpu / runs as f64, units as f64 / dt))
}

struct Mark {
    at: Instant,
    cpu: u64,
    rss_kb: u64,
}

async fn run(peer: Arc<Peer>) -> Res<Value> {
    let secs = env_num("BENCH_SECONDS", 3) as f64;
    let total = env_num("BENCH_CONC_CALLS", 10_000) as usize;
    let inflight = env_num("BENCH_INFLIGHT", 64) as usize;
    let mark_at = env_num("BENCH_MARK", 1_000) as usize;

    // BENCH_PROFILE=chat|embed|stream: only that operation, sequentially (for perf/callgrind).
    if let Ok(op) = std::env::var("BENCH_PROFILE") {
        let (ps, cpu, units) = match op.as_str() {
            "chat" => timed(100, secs, || peer.chat()).await?,
            "embed" => timed(20, secs, || peer.embed()).await?,
            "stream" => timed(2, secs, || peer.stream()).await?,
            other => return Err(format!("unknown BENCH_PROFILE {other}")),
        };
        return Ok(json!({"profile": op, "per_s": ps, "cpu_us": cpu, "units_per_s": units}));
    }

    // Check the answers once, so a broken route cannot pass as a fast one.
    if peer.chat().await? == 0 {
        return Err("empty chat answer".into());
    }
    if peer.embed().await? != DIMS {
        return Err("embedding of the wrong size".into());
    }
    if peer.stream().await? != CHUNKS {
        return Err("stream with the wrong number of chunks".into());
    }

    // 1. Sequential calls (one connection in every client's pool).
    let (seq_cps, seq_cpu, _) = timed(100, secs, || peer.chat()).await?;

    // 2. 64 in flight; the first BENCH_MARK calls open and fill the pool.
    let issued = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mark = Arc::new(OnceLock::<Mark>::new());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(inflight);
    for _ in 0..inflight {
        let (peer, issued, done, mark) = (peer.clone(), issued.clone(), done.clone(), mark.clone());
        tasks.push(tokio::spawn(async move {
            while issued.fetch_add(1, Ordering::Relaxed) < total && started.elapsed() < PHASE_CAP {
                peer.chat().await?;
                if done.fetch_add(1, Ordering::Relaxed) + 1 == mark_at {
                    let _ = mark.set(Mark {
                        at: Instant::now(),
                        cpu: cpu_us(),
                        rss_kb: status_kb("VmRSS"),
                    });
                }
            }
            Res::Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let (end, end_cpu, rss_end) = (Instant::now(), cpu_us(), status_kb("VmRSS"));
    let calls = done.load(Ordering::Relaxed);
    let m = mark
        .get()
        .ok_or("the concurrent phase never reached the mark")?;
    let measured = (calls - mark_at) as f64;
    let conc_cps = measured / (end - m.at).as_secs_f64();
    let conc_cpu = (end_cpu - m.cpu) as f64 / measured;

    // 3-4. Streams, embeddings.
    let (streams_ps, _, stream_cps) = timed(2, secs, || peer.stream()).await?;
    let (embed_ps, embed_cpu, _) = timed(20, secs, || peer.embed()).await?;

    // 5. claw only: a call that fails over from a refused endpoint to the next one.
    let failover = match &*peer {
        Peer::Claw { failover, .. } => {
            let (ps, cpu, _) = timed(100, secs, || async move {
                let v = failover
                    .call_specific_model(MODEL, messages(), Default::default(), Default::default())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(content_len(&v))
            })
            .await?;
            Some((1e6 / ps, cpu))
        }
        _ => None,
    };

    // 6. claw only: sequential calls with an event listener attached, and with spans exported.
    let observed = match &*peer {
        Peer::Claw {
            listened, traced, ..
        } => {
            let seq = |c: &'static claw_llm::Client| {
                timed(100, secs, move || async move {
                    let v = c
                        .call_specific_model(MODEL, messages(), Default::default(), Default::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(content_len(&v))
                })
            };
            // The clients live as long as the process (one Peer per process).
            let listened: &'static claw_llm::Client = Box::leak(Box::new(listened.clone()));
            let traced: &'static claw_llm::Client = Box::leak(Box::new(traced.clone()));
            let (l_ps, l_cpu, _) = seq(listened).await?;
            let (t_ps, t_cpu, _) = seq(traced).await?;
            claw_llm::flush_telemetry(Duration::from_secs(5));
            Some((1e6 / l_ps, l_cpu, 1e6 / t_ps, t_cpu))
        }
        _ => None,
    };

    Ok(json!({
        "seq_cps": seq_cps,
        "seq_cpu_us": seq_cpu,
        "conc_cps": conc_cps,
        "conc_cpu_us": conc_cpu,
        "conc_calls": calls,
        "stream_cps": stream_cps,
        "streams_ps": streams_ps,
        "embed_ps": embed_ps,
        "embed_cpu_us": embed_cpu,
        "failover_us": failover.map(|f| f.0),
        "failover_cpu_us": failover.map(|f| f.1),
        "listener_us": observed.map(|o| o.0),
        "listener_cpu_us": observed.map(|o| o.1),
        "otel_us": observed.map(|o| o.2),
        "otel_cpu_us": observed.map(|o| o.3),
        "rss_mark_kb": m.rss_kb,
        "rss_end_kb": rss_end,
        "peak_rss_kb": status_kb("VmHWM"),
    }))
}

/// BENCH_FOREIGN=1: sequential chat calls made the way the Node and Python bindings make them:
/// from a thread outside the runtime, each call spawned onto it and waited for on a channel.
/// With BENCH_WORKERS it shows what the runtime's worker count costs per call (thread hops).
fn foreign(rt: &tokio::runtime::Runtime, peer: Arc<Peer>) -> Res<Value> {
    let secs = env_num("BENCH_SECONDS", 3) as f64;
    let call = |peer: &Arc<Peer>| -> Res<usize> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let peer = peer.clone();
        rt.spawn(async move {
            let _ = tx.send(peer.chat().await);
        });
        rx.recv().map_err(|e| e.to_string())?
    };
    for _ in 0..100 {
        call(&peer)?;
    }
    let (t0, c0) = (Instant::now(), cpu_us());
    let mut runs = 0u64;
    while t0.elapsed().as_secs_f64() < secs && t0.elapsed() < PHASE_CAP {
        call(&peer)?;
        runs += 1;
    }
    let dt = t0.elapsed().as_secs_f64();
    Ok(json!({
        "profile": "foreign-seq",
        "workers": std::env::var("BENCH_WORKERS").unwrap_or_else(|_| "default".into()),
        "per_s": runs as f64 / dt,
        "cpu_us": (cpu_us() - c0) as f64 / runs as f64,
    }))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: claw-llm-bench <claw|reqwest|async-openai> <base_url> <stream_base_url>");
        std::process::exit(2);
    }
    // BENCH_CURRENT=1: a current-thread runtime driven by the main thread itself (no hand-off).
    let current = std::env::var("BENCH_CURRENT").is_ok_and(|v| v == "1");
    let mut builder = if current {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if let Some(n) = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder.worker_threads(n);
    }
    let rt = builder.enable_all().build().expect("tokio runtime");
    // The harness runs in a task on the runtime, as a server's handlers do, not on the thread
    // that blocks on the runtime (that would add a thread hop to every wake-up of every client).
    let _in_runtime = rt.enter();
    let peer = Peer::new(&args[1], &args[2], &args[3]).map(Arc::new);
    let result = peer.and_then(|peer| {
        if std::env::var("BENCH_FOREIGN").is_ok_and(|v| v == "1") {
            return foreign(&rt, peer);
        }
        if current {
            return rt.block_on(run(peer));
        }
        rt.block_on(tokio::spawn(run(peer)))
            .map_err(|e| e.to_string())?
    });
    match result {
        Ok(mut v) => {
            v["lang"] = json!("rust");
            v["client"] = json!(args[1]);
            println!("{v}");
        }
        Err(e) => {
            println!("{}", json!({"lang": "rust", "client": args[1], "error": e}));
            std::process::exit(1);
        }
    }
}
