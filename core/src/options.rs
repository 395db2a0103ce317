//! Per-call options that belong to the client, not to the request body: the deadline, the
//! stream idle timeout, retries, extra headers and cancellation. Bindings hand their language's
//! options object to [`CallOptions::extract`], so every language validates them the same way.

use crate::config::validate_header;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// Per-call options that belong to the client, not to the request body.
///
/// ```
/// use serde_json::json;
/// let mut params = json!({"timeoutMs": 500, "temperature": 0.2}).as_object().unwrap().clone();
/// let (opts, stream) = claw_llm::CallOptions::extract(&mut params).unwrap();
/// assert_eq!(opts.timeout_ms, Some(500));
/// assert!(!stream);
/// assert_eq!(params.len(), 1); // temperature is passed through
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Total deadline of the call, retries included (for a stream: until the head arrives).
    pub timeout_ms: Option<u64>,
    /// Longest gap between two reads of a stream (default: the timeout).
    pub idle_timeout_ms: Option<u64>,
    /// Retries after the first attempt.
    pub max_retries: Option<u32>,
    /// Extra request headers for this call.
    pub headers: Vec<(String, String)>,
    /// Cancels the call (and its stream) when triggered.
    pub cancel: Option<CancellationToken>,
    /// Inputs per embeddings request (`batchSize`; else `EMBEDDING_BATCH_SIZE`, else the
    /// model's known limit, else 2048).
    pub batch_size: Option<usize>,
    /// What to do with a leading `<think>` block (`reasoning: "raw" | "split"`; else
    /// `LLM_REASONING`).
    pub reasoning: Option<crate::Reasoning>,
    /// Models to try, in order, when the requested one keeps failing (`fallbackModels`; else
    /// the configuration's `LLM_FALLBACK_MODELS`).
    pub fallback_models: Option<Vec<String>>,
    /// Receives this call's events (besides its configuration's and the process-wide
    /// listeners); see [`crate::Event`].
    pub on_event: Option<crate::events::Listener>,
    /// The caller's trace (`traceparent`): the call's span is its child, and the gateway gets
    /// the W3C `traceparent` header (the caller's own when no collector is set).
    pub traceparent: Option<crate::TraceParent>,
}

impl CallOptions {
    /// Removes the client's own keys (`timeoutMs`, `idleTimeoutMs`, `maxRetries`, `headers`,
    /// `signal`, `batchSize`, `reasoning`, `fallbackModels`, `traceparent`, `stream`) from a JS-style options object and validates them; what stays in
    /// `params` is passed to the gateway untouched. Returns the options and the `stream` flag.
    pub fn extract(params: &mut Map<String, Value>) -> Result<(CallOptions, bool)> {
        let mut opts = CallOptions {
            timeout_ms: positive_ms(params.shift_remove("timeoutMs"), "timeoutMs")?,
            idle_timeout_ms: positive_ms(params.shift_remove("idleTimeoutMs"), "idleTimeoutMs")?,
            ..Default::default()
        };
        match params.shift_remove("maxRetries") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_u64().filter(|n| *n <= 100).ok_or_else(|| {
                    Error::config(format!(
                        "maxRetries must be an integer between 0 and 100, got {v}"
                    ))
                })?;
                opts.max_retries = Some(n as u32);
            }
        }
        match params.shift_remove("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let v = v
                        .as_str()
                        .ok_or_else(|| Error::config(format!("headers[{k:?}] must be a string")))?;
                    validate_header(&k, v)?;
                    opts.headers.push((k, v.to_string()));
                }
            }
            Some(other) => {
                return Err(Error::config(format!(
                    "headers must be an object of strings, got {}",
                    type_name(&other)
                )))
            }
        }
        params.shift_remove("signal");
        match params.shift_remove("batchSize") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    Error::config(format!("batchSize must be a positive integer, got {v}"))
                })?;
                opts.batch_size = Some(n as usize);
            }
        }
        // Only the string form is ours: an object `reasoning` (OpenRouter's `{effort}`) is the
        // gateway's and passes through.
        if let Some(Value::String(mode)) = params.get("reasoning") {
            opts.reasoning = Some(crate::Reasoning::parse(mode)?);
            params.shift_remove("reasoning");
        }
        match params.shift_remove("fallbackModels") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let models = items
                    .into_iter()
                    .map(|m| match m {
                        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                        other => Err(Error::config(format!(
                            "fallbackModels must be a list of non-empty strings, got {}",
                            type_name(&other)
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                opts.fallback_models = Some(models);
            }
            Some(other) => {
                return Err(Error::config(format!(
                    "fallbackModels must be a list of non-empty strings, got {}",
                    type_name(&other)
                )))
            }
        }
        match params.shift_remove("traceparent") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => opts.traceparent = Some(crate::TraceParent::parse(&t)?),
            Some(other) => {
                return Err(Error::config(format!(
                    "traceparent must be a string, got {}",
                    type_name(&other)
                )))
            }
        }
        let stream = match params.shift_remove("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Err(Error::config(format!(
                    "stream must be a boolean, got {}",
                    type_name(&other)
                )))
            }
        };
        Ok((opts, stream))
    }
}

fn positive_ms(v: Option<Value>, name: &str) -> Result<Option<u64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(f) if (1.0..=1e12).contains(&f) => Ok(Some(f as u64)),
            _ => Err(Error::config(format!(
                "{name} must be a positive number of milliseconds, got {v}"
            ))),
        },
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_extract_client_keys_and_pass_the_rest() {
        let mut p = json!({"timeoutMs": 1500, "maxRetries": 0, "idleTimeoutMs": 200,
            "headers": {"x-a": "1"}, "signal": {}, "stream": true,
            "temperature": 0.1, "tools": [], "response_format": {"type": "json_object"}})
        .as_object()
        .unwrap()
        .clone();
        let (o, stream) = CallOptions::extract(&mut p).unwrap();
        assert!(stream);
        assert_eq!(o.timeout_ms, Some(1500));
        assert_eq!(o.idle_timeout_ms, Some(200));
        assert_eq!(o.max_retries, Some(0));
        assert_eq!(o.headers, vec![("x-a".to_string(), "1".to_string())]);
        let keys: Vec<_> = p.keys().cloned().collect();
        assert_eq!(keys, ["temperature", "tools", "response_format"]);
    }

    #[test]
    fn options_reject_bad_values_with_config_code() {
        for bad in [
            json!({"stream": "yes"}),
            json!({"timeoutMs": -1}),
            json!({"timeoutMs": "fast"}),
            json!({"maxRetries": 1.5}),
            json!({"headers": "x"}),
            json!({"headers": {"x": 1}}),
            json!({"headers": {"bad name": "1"}}),
            json!({"batchSize": 0}),
            json!({"batchSize": "10"}),
            json!({"reasoning": "hide"}),
            json!({"traceparent": "00-abc"}),
            json!({"traceparent": 7}),
        ] {
            let mut p = bad.as_object().unwrap().clone();
            let err = CallOptions::extract(&mut p).unwrap_err();
            assert_eq!(err.code(), "LLM_CLIENT_CONFIG", "{bad}");
        }
    }

    #[test]
    fn options_take_batch_size_and_the_reasoning_switch() {
        let mut p = json!({"batchSize": 10, "reasoning": "split", "dimensions": 8})
            .as_object()
            .unwrap()
            .clone();
        let (o, _) = CallOptions::extract(&mut p).unwrap();
        assert_eq!(o.batch_size, Some(10));
        assert_eq!(o.reasoning, Some(crate::Reasoning::Split));
        assert_eq!(p.keys().collect::<Vec<_>>(), ["dimensions"]);
        // An object `reasoning` (OpenRouter's) belongs to the gateway.
        let mut p = json!({"reasoning": {"effort": "high"}})
            .as_object()
            .unwrap()
            .clone();
        let (o, _) = CallOptions::extract(&mut p).unwrap();
        assert_eq!(o.reasoning, None);
        assert_eq!(p["reasoning"]["effort"], "high");
    }
}
