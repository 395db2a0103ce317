//! Embedding batches: an `input` list longer than the batch size is sent as several requests of
//! at most that size, at most `EMBEDDING_CONCURRENCY` at a time, inside the call's one deadline,
//! and the answers are merged into one OpenAI-shaped response (`data` in input order with
//! `index` 0…n−1, `usage` summed, the first answer's `model` and `object`).
//!
//! The batch size is the call's `batchSize` / `batch_size` option, else `EMBEDDING_BATCH_SIZE`,
//! else the model's known limit ([`KNOWN_LIMITS`]), else [`DEFAULT_BATCH_SIZE`]. A failed batch
//! fails the call (the batches still in flight are dropped, which cancels their requests); its
//! error keeps its code and its message names the input range, and points at
//! `EMBEDDING_BATCH_SIZE` when the gateway's words are about a batch limit.

use crate::error::{Error, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Map, Value};
use std::future::Future;
use tokio::time::{Duration, Instant};

/// The batch size when neither the call, the environment nor the table gives one (the largest
/// batch OpenAI's own embeddings endpoint accepts).
pub const DEFAULT_BATCH_SIZE: usize = 2048;

/// Requests in flight at once when `EMBEDDING_CONCURRENCY` is not set.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Providers' documented per-request input limits, by model name. DashScope (Alibaba Cloud
/// Model Studio): `text-embedding-v3` and `v4` accept at most 10 inputs, `v1` and `v2` 25.
pub const KNOWN_LIMITS: &[(&str, usize)] = &[
    ("text-embedding-v1", 25),
    ("text-embedding-v2", 25),
    ("text-embedding-v3", 10),
    ("text-embedding-v4", 10),
];

/// The known input limit of `model`: the name after any provider prefix (`dashscope/…`,
/// `qwen:…`), compared case-insensitively.
///
/// ```
/// assert_eq!(claw_llm::batch::known_limit("text-embedding-v4"), Some(10));
/// assert_eq!(claw_llm::batch::known_limit("dashscope/Text-Embedding-V2"), Some(25));
/// assert_eq!(claw_llm::batch::known_limit("text-embedding-3-small"), None);
/// ```
pub fn known_limit(model: &str) -> Option<usize> {
    let name = model.trim().rsplit(['/', ':']).next().unwrap_or("");
    KNOWN_LIMITS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, limit)| *limit)
}

/// The batch size of one call: the call's option, else the configured size, else the table.
pub(crate) fn batch_size(model: &str, option: Option<usize>, configured: Option<usize>) -> usize {
    option
        .or(configured)
        .or_else(|| known_limit(model))
        .unwrap_or(DEFAULT_BATCH_SIZE)
        .max(1)
}

/// Whether the gateway's words are about a limit on the number of inputs per request (e.g.
/// DashScope's `batch size is invalid, it should not be larger than 10`).
fn mentions_batch_limit(summary: &str) -> bool {
    let s = summary.to_ascii_lowercase();
    let about_batch = s.contains("batch")
        && [
            "size", "limit", "larger", "exceed", "too many", "max", "at most",
        ]
        .iter()
        .any(|w| s.contains(w));
    about_batch || s.contains("too many inputs") || s.contains("input array too long")
}

/// `err` with its message prefixed by the range of inputs it is about (its code unchanged).
fn in_range(mut err: Error, start: usize, len: usize, total: usize, size: usize) -> Error {
    let range = format!("inputs {start}-{} of {total}", start + len - 1);
    let hint = |summary: &str| {
        if mentions_batch_limit(summary) {
            format!(
                "{range}: {summary} (this call sent up to {size} inputs per request; set EMBEDDING_BATCH_SIZE, or the batchSize / batch_size option, to the gateway's limit)"
            )
        } else {
            format!("{range}: {summary}")
        }
    };
    match err.unwrapped_mut() {
        Error::Http(d) | Error::Api(d) => d.summary = hint(&d.summary),
        Error::BadResponse { message, .. }
        | Error::Connection { message, .. }
        | Error::Stream { message, .. } => *message = hint(message),
        _ => {}
    }
    err
}

/// Adds every number of `from` into `into` (`prompt_tokens`, `total_tokens`, nested objects).
fn add_usage(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(a)), Value::Object(b)) => add_usage(a, b),
            (Some(Value::Number(a)), Value::Number(b)) => {
                let sum = match (a.as_u64(), b.as_u64()) {
                    (Some(x), Some(y)) => Value::from(x.saturating_add(y)),
                    _ => Value::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
                };
                into.insert(key.clone(), sum);
            }
            (None, _) => {
                into.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
}

/// One batch's `data` items, moved out of its answer, in the batch's own order.
fn take_items(answer: &mut Value, start: usize, len: usize, total: usize) -> Result<Vec<Value>> {
    let items = match answer.get_mut("data").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => {
            let err = Error::BadResponse {
                status: 200,
                message: "the embeddings reply has no data array".into(),
                snippet: crate::error::snippet(answer.to_string().as_bytes()),
                request_id: None,
                attempts: 1,
            };
            return Err(in_range(err, start, len, total, len));
        }
    };
    if items.len() != len {
        let err = Error::BadResponse {
            status: 200,
            message: format!(
                "the gateway returned {} embeddings for {len} inputs",
                items.len()
            ),
            snippet: String::new(),
            request_id: None,
            attempts: 1,
        };
        return Err(in_range(err, start, len, total, len));
    }
    let mut keyed: Vec<(u64, Value)> = items
        .into_iter()
        .enumerate()
        .map(|(pos, item)| {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            (index, item)
        })
        .collect();
    keyed.sort_by_key(|(index, _)| *index);
    Ok(keyed.into_iter().map(|(_, item)| item).collect())
}

/// Sends `inputs` in batches of `size` through `one` (which sends one request whose `input` is
/// the given list, bounded by the given time left) and merges the answers.
///
/// `timeout` is the whole call's deadline; a batch that would start after it fails the call with
/// `ETIMEDOUT`, and each batch's own deadline is what is left of it.
pub(crate) async fn run<F, Fut>(
    inputs: Vec<Value>,
    size: usize,
    concurrency: usize,
    timeout: Duration,
    one: F,
) -> Result<Value>
where
    F: Fn(Vec<Value>, Duration) -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    let total = inputs.len();
    let size = size.max(1);
    let deadline = Instant::now() + timeout;
    let mut batches = Vec::with_capacity(total.div_ceil(size));
    let mut rest = inputs.into_iter();
    loop {
        let batch: Vec<Value> = rest.by_ref().take(size).collect();
        if batch.is_empty() {
            break;
        }
        batches.push(batch);
    }
    let count = batches.len();
    let mut pending = batches.into_iter().enumerate();
    let mut in_flight = FuturesUnordered::new();
    let mut results: Vec<Option<Vec<Value>>> = (0..count).map(|_| None).collect();
    let mut head: Option<Value> = None;
    let mut usage: Option<Map<String, Value>> = None;

    let start = |(i, batch): (usize, Vec<Value>)| {
        let len = batch.len();
        let left = deadline.saturating_duration_since(Instant::now());
        let fut = one(batch, left);
        async move {
            let r = if left.is_zero() {
                Err(Error::Timeout {
                    timeout_ms: timeout.as_millis() as u64,
                    attempts: 0,
                    last: None,
                })
            } else {
                fut.await
            };
            (i, len, r)
        }
    };
    for job in pending.by_ref().take(concurrency.max(1)) {
        in_flight.push(start(job));
    }
    while let Some((i, len, result)) = in_flight.next().await {
        let first = i * size;
        let mut answer = match result {
            Ok(answer) => answer,
            Err(Error::Timeout { attempts, last, .. }) => {
                return Err(Error::Timeout {
                    timeout_ms: timeout.as_millis() as u64,
                    attempts,
                    last,
                })
            }
            Err(e) => return Err(in_range(e, first, len, total, size)),
        };
        let items = take_items(&mut answer, first, len, total)?;
        for (k, mut item) in items.into_iter().enumerate() {
            if let Some(obj) = item.as_object_mut() {
                obj.insert("index".into(), Value::from(first + k));
            }
            results[i].get_or_insert_with(Vec::new).push(item);
        }
        if let Some(Value::Object(u)) = answer.get("usage") {
            match usage.as_mut() {
                Some(sum) => add_usage(sum, u),
                None => usage = Some(u.clone()),
            }
        }
        if i == 0 {
            head = Some(answer);
        }
        if let Some(job) = pending.next() {
            in_flight.push(start(job));
        }
    }

    let mut out = match head {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    out.shift_remove("usage");
    let mut data = Vec::with_capacity(total);
    for items in results.into_iter().flatten() {
        data.extend(items);
    }
    out.insert("data".into(), Value::Array(data));
    if !out.contains_key("object") {
        out.insert("object".into(), Value::String("list".into()));
    }
    if let Some(u) = usage {
        out.insert("usage".into(), Value::Object(u));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn texts(n: usize) -> Vec<Value> {
        (0..n).map(|i| Value::String(format!("t{i}"))).collect()
    }

    /// A fake gateway: answers each batch with its items in reverse order, carrying the text.
    async fn answer(batch: Vec<Value>) -> Result<Value> {
        let n = batch.len();
        let data: Vec<Value> = batch
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": [0.5], "text": t}))
            .collect();
        Ok(
            json!({"object": "list", "model": "m", "data": data, "usage": {"prompt_tokens": n, "total_tokens": n}}),
        )
    }

    #[tokio::test]
    async fn batches_merge_in_input_order_with_summed_usage() {
        let v = run(texts(23), 10, 4, Duration::from_secs(5), |b, _| answer(b))
            .await
            .unwrap();
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 23);
        for (i, item) in data.iter().enumerate() {
            assert_eq!(item["index"], i);
            assert_eq!(item["text"], format!("t{i}"));
        }
        assert_eq!(v["usage"], json!({"prompt_tokens": 23, "total_tokens": 23}));
        assert_eq!(
            (v["model"].as_str(), v["object"].as_str()),
            (Some("m"), Some("list"))
        );
    }

    #[tokio::test]
    async fn batches_keep_at_most_concurrency_in_flight() {
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let v = run(texts(95), 10, 3, Duration::from_secs(5), |b, _| {
            let (now, peak) = (&now, &peak);
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                answer(b).await
            }
        })
        .await
        .unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 95);
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_batch_names_its_range_and_the_batch_knob() {
        let e = run(
            texts(30),
            10,
            1,
            Duration::from_secs(5),
            |b, _| async move {
                if b[0] == "t10" {
                    Err(Error::BadResponse {
                        status: 400,
                        message: "batch size is invalid, it should not be larger than 5".into(),
                        snippet: String::new(),
                        request_id: None,
                        attempts: 1,
                    })
                } else {
                    answer(b).await
                }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "LLM_BAD_RESPONSE");
        let m = e.to_string();
        assert!(
            m.starts_with("inputs 10-19 of 30: batch size is invalid"),
            "{m}"
        );
        assert!(m.contains("EMBEDDING_BATCH_SIZE"), "{m}");
    }

    #[tokio::test]
    async fn a_short_answer_is_a_bad_response() {
        let e = run(texts(4), 2, 2, Duration::from_secs(5), |mut b, _| {
            b.pop();
            answer(b)
        })
        .await
        .unwrap_err();
        assert_eq!(e.code(), "LLM_BAD_RESPONSE");
        assert!(e.to_string().contains("1 embeddings for 2 inputs"), "{e}");
    }

    #[test]
    fn batch_size_precedence() {
        assert_eq!(batch_size("text-embedding-v4", Some(3), Some(7)), 3);
        assert_eq!(batch_size("text-embedding-v4", None, Some(7)), 7);
        assert_eq!(batch_size("text-embedding-v4", None, None), 10);
        assert_eq!(batch_size("text-embedding-v1", None, None), 25);
        assert_eq!(batch_size("bge-m3", None, None), DEFAULT_BATCH_SIZE);
    }

    #[test]
    fn batch_limit_words_are_recognised() {
        assert!(mentions_batch_limit(
            "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should not be larger than 10.: input.contents"
        ));
        assert!(mentions_batch_limit("Too many inputs in one request"));
        assert!(!mentions_batch_limit("Invalid token"));
    }
}
