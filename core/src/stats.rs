//! Usage statistics per model since the process started (or [`reset_stats`]): calls, failures
//! by code, retries, tokens and latency percentiles, and the same as Prometheus text.
//!
//! Every finished call adds to them, listener or not: one uncontended lock (its thread's shard)
//! and one histogram record (hdrhistogram: fixed memory per model, 2 significant digits, from
//! 1 µs to an hour).

use crate::events::Usage;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// One model's numbers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ModelStats {
    /// Calls finished (succeeded or failed).
    pub calls: u64,
    /// Failed calls, by error code.
    pub failures: BTreeMap<String, u64>,
    /// Attempts beyond the first of each request (retries and failovers).
    pub retries: u64,
    /// Prompt tokens reported by the gateway.
    pub prompt_tokens: u64,
    /// Completion tokens reported by the gateway.
    pub completion_tokens: u64,
    /// Total tokens reported by the gateway.
    pub total_tokens: u64,
    /// Call latency percentiles, in milliseconds.
    pub latency_ms: Latency,
}

/// Latency percentiles, in milliseconds (0 before the first call).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// Every model's numbers, and the events dropped because listeners fell behind.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Per model (the model asked for; `models` for the models list).
    pub models: BTreeMap<String, ModelStats>,
    /// Events dropped since the process started (a full listener queue).
    pub dropped_events: u64,
}

struct Entry {
    counts: ModelStats,
    /// Latency in microseconds.
    latency: Histogram<u32>,
    latency_sum: Duration,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            counts: ModelStats::default(),
            // 1 µs … 1 hour at 2 significant digits (1 %): about 13 kB per model and thread.
            // The bounds are valid, so this cannot fail.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 2)
                .unwrap_or_else(|_| Histogram::new(2).expect("2 significant digits are valid")),
            latency_sum: Duration::ZERO,
        }
    }

    fn add(
        &mut self,
        failure: Option<&'static str>,
        retries: u32,
        usage: Option<Usage>,
        elapsed: Duration,
    ) {
        let c = &mut self.counts;
        c.calls += 1;
        c.retries += u64::from(retries);
        if let Some(code) = failure {
            *c.failures.entry(code.to_string()).or_insert(0) += 1;
        }
        if let Some(u) = usage {
            c.prompt_tokens += u.prompt_tokens;
            c.completion_tokens += u.completion_tokens;
            c.total_tokens += u.total_tokens;
        }
        self.latency
            .saturating_record((elapsed.as_micros() as u64).max(1));
        self.latency_sum += elapsed;
    }

    fn merge(&mut self, other: &Entry) {
        let (c, o) = (&mut self.counts, &other.counts);
        c.calls += o.calls;
        c.retries += o.retries;
        for (code, n) in &o.failures {
            *c.failures.entry(code.clone()).or_insert(0) += n;
        }
        c.prompt_tokens += o.prompt_tokens;
        c.completion_tokens += o.completion_tokens;
        c.total_tokens += o.total_tokens;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.latency_sum += other.latency_sum;
    }

    fn snapshot(&self) -> ModelStats {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let mut s = self.counts.clone();
        if !self.latency.is_empty() {
            s.latency_ms = Latency {
                p50: ms(0.5),
                p95: ms(0.95),
                p99: ms(0.99),
            };
        }
        s
    }
}

/// The numbers of the calls that finished on one thread. Each thread adds to its own shard
/// (a lock nobody else takes but a reader), so calls finishing on several runtime threads never
/// wait on one another; [`stats`] adds the shards up.
type Shard = Mutex<BTreeMap<String, Entry>>;

static SHARDS: Mutex<Vec<Arc<Shard>>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: std::cell::OnceCell<Arc<Shard>> = const { std::cell::OnceCell::new() };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn new_shard() -> Arc<Shard> {
    let shard = Arc::new(Mutex::new(BTreeMap::new()));
    lock(&SHARDS).push(shard.clone());
    shard
}

/// Every shard's numbers added up.
fn merged() -> BTreeMap<String, Entry> {
    let shards: Vec<Arc<Shard>> = lock(&SHARDS).clone();
    let mut all: BTreeMap<String, Entry> = BTreeMap::new();
    for shard in shards {
        for (model, e) in lock(&shard).iter() {
            match all.get_mut(model) {
                Some(into) => into.merge(e),
                None => {
                    let mut copy = Entry::new();
                    copy.merge(e);
                    all.insert(model.clone(), copy);
                }
            }
        }
    }
    all
}

/// Adds one finished call.
pub(crate) fn record(
    model: &str,
    failure: Option<&'static str>,
    retries: u32,
    usage: Option<Usage>,
    elapsed: Duration,
) {
    let add = |shard: &Shard| {
        let mut t = lock(shard);
        let entry = match t.get_mut(model) {
            Some(e) => e,
            None => t.entry(model.to_string()).or_insert_with(Entry::new),
        };
        entry.add(failure, retries, usage, elapsed);
    };
    // A thread being torn down has no thread-local left: its calls go to a shard of their own.
    if MINE.try_with(|m| add(m.get_or_init(new_shard))).is_err() {
        add(&new_shard());
    }
}

/// Every model's numbers since the process started or [`reset_stats`].
pub fn stats() -> Stats {
    let models = merged()
        .iter()
        .map(|(m, e)| (m.clone(), e.snapshot()))
        .collect();
    Stats {
        models,
        dropped_events: crate::events::dropped_events(),
    }
}

/// Starts the numbers again from zero (the dropped-event count is the process's and stays).
pub fn reset_stats() {
    for shard in lock(&SHARDS).iter() {
        lock(shard).clear();
    }
}

/// The same numbers as Prometheus' text exposition format (version 0.0.4): metric names start
/// with `claw_llm_`, labels are `model` and, for failures, `code`.
pub fn metrics_text() -> String {
    let all = merged();
    let t: &BTreeMap<String, Entry> = &all;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        rows(&mut out);
    };
    let counter = |get: fn(&ModelStats) -> u64, name: &'static str| {
        move |out: &mut String| {
            for (m, e) in t.iter() {
                let _ = writeln!(out, "{name}{{model=\"{}\"}} {}", label(m), get(&e.counts));
            }
        }
    };
    family(
        "claw_llm_calls_total",
        "counter",
        "Calls finished, per model.",
        &mut counter(|c| c.calls, "claw_llm_calls_total"),
    );
    family(
        "claw_llm_failures_total",
        "counter",
        "Calls failed, per model and error code.",
        &mut |out| {
            for (m, e) in t.iter() {
                for (code, n) in &e.counts.failures {
                    let _ = writeln!(
                        out,
                        "claw_llm_failures_total{{model=\"{}\",code=\"{}\"}} {n}",
                        label(m),
                        label(code)
                    );
                }
            }
        },
    );
    family(
        "claw_llm_retries_total",
        "counter",
        "Attempts beyond the first of each request, per model.",
        &mut counter(|c| c.retries, "claw_llm_retries_total"),
    );
    family(
        "claw_llm_prompt_tokens_total",
        "counter",
        "Prompt tokens reported by the gateway, per model.",
        &mut counter(|c| c.prompt_tokens, "claw_llm_prompt_tokens_total"),
    );
    family(
        "claw_llm_completion_tokens_total",
        "counter",
        "Completion tokens reported by the gateway, per model.",
        &mut counter(|c| c.completion_tokens, "claw_llm_completion_tokens_total"),
    );
    family(
        "claw_llm_tokens_total",
        "counter",
        "Total tokens reported by the gateway, per model.",
        &mut counter(|c| c.total_tokens, "claw_llm_tokens_total"),
    );
    family(
        "claw_llm_call_duration_seconds",
        "summary",
        "Call latency, per model.",
        &mut |out| {
            for (m, e) in t.iter() {
                let m = label(m);
                for q in [0.5, 0.95, 0.99] {
                    let secs = if e.latency.is_empty() {
                        0.0
                    } else {
                        e.latency.value_at_quantile(q) as f64 / 1e6
                    };
                    let _ = writeln!(
                        out,
                        "claw_llm_call_duration_seconds{{model=\"{m}\",quantile=\"{q}\"}} {secs}"
                    );
                }
                let _ = writeln!(
                    out,
                    "claw_llm_call_duration_seconds_sum{{model=\"{m}\"}} {}",
                    e.latency_sum.as_secs_f64()
                );
                let _ = writeln!(
                    out,
                    "claw_llm_call_duration_seconds_count{{model=\"{m}\"}} {}",
                    e.counts.calls
                );
            }
        },
    );
    family(
        "claw_llm_events_dropped_total",
        "counter",
        "Events dropped because listeners fell behind.",
        &mut |out| {
            let _ = writeln!(
                out,
                "claw_llm_events_dropped_total {}",
                crate::events::dropped_events()
            );
        },
    );
    out
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_calls_failures_tokens_and_latency_per_model() {
        let model = "unit-stats-model\"x";
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
        };
        for ms in [10, 20, 30] {
            record(model, None, 0, Some(usage), Duration::from_millis(ms));
        }
        record(
            model,
            Some("LLM_HTTP_ERROR"),
            2,
            None,
            Duration::from_millis(40),
        );
        let s = stats().models.remove(model).unwrap();
        assert_eq!(s.calls, 4);
        assert_eq!(s.failures["LLM_HTTP_ERROR"], 1);
        assert_eq!(s.retries, 2);
        assert_eq!(
            (s.prompt_tokens, s.completion_tokens, s.total_tokens),
            (9, 12, 21)
        );
        assert!(
            (19.8..20.2).contains(&s.latency_ms.p50),
            "{:?}",
            s.latency_ms
        );
        assert!(
            (39.6..40.4).contains(&s.latency_ms.p99),
            "{:?}",
            s.latency_ms
        );
        let text = metrics_text();
        assert!(
            text.contains("claw_llm_calls_total{model=\"unit-stats-model\\\"x\"} 4"),
            "{text}"
        );
        assert!(text.contains(
            "claw_llm_failures_total{model=\"unit-stats-model\\\"x\",code=\"LLM_HTTP_ERROR\"} 1"
        ));
    }
}
