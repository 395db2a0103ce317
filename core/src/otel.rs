//! OpenTelemetry: each call as a span following the GenAI semantic conventions
//! (`chat <model>`, `embeddings <model>`), its attempts as span events, exported over
//! OTLP/HTTP by the `opentelemetry-otlp` exporter; the W3C `traceparent` of the call's span goes
//! to the gateway.
//!
//! On when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set and
//! `LLM_OTEL` is not `off`. One tracer provider per collector endpoint and process, built on the
//! first span (again in a forked child, whose parent's export thread did not survive the fork);
//! its batch processor exports from a thread of its own, never from the call. At process exit
//! the spans still queued are flushed, waiting at most [`EXIT_FLUSH`].

use crate::error::{Error, Result};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SdkTracerProvider, Span};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

/// The longest a process exit waits for queued spans to reach the collector.
pub const EXIT_FLUSH: Duration = Duration::from_secs(2);

/// The telemetry part of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Where spans are POSTed (`…/v1/traces`).
    pub traces_endpoint: String,
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`: record messages in and out.
    pub capture_content: bool,
}

/// Reads the telemetry settings: `None` when no collector is set or `LLM_OTEL=off`.
pub(crate) fn settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Settings>> {
    match get("LLM_OTEL").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("on") | Some("auto") => {}
        Some("off") => return Ok(None),
        Some(other) => {
            return Err(Error::config(format!(
                "LLM_OTEL must be on or off, got {other:?}"
            )))
        }
    }
    let capture_content = get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = match (
        get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(traces), _) => traces,
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    if reqwest::Url::parse(&endpoint).is_err() {
        return Err(Error::config(format!(
            "OTEL_EXPORTER_OTLP_ENDPOINT is not a URL: {}",
            crate::url::redacted(&endpoint)
        )));
    }
    Ok(Some(Settings {
        traces_endpoint: endpoint,
        capture_content,
    }))
}

/// A caller's trace to join: a W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent(Box<(String, SpanContext)>);

impl TraceParent {
    /// Parses a `traceparent` value; anything else is `LLM_CLIENT_CONFIG`.
    pub fn parse(text: &str) -> Result<TraceParent> {
        let bad = || {
            Error::config(format!(
                "traceparent must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>), got {text:?}"
            ))
        };
        let parts: Vec<&str> = text.trim().split('-').collect();
        let [version, trace, span, flags] = parts[..] else {
            return Err(bad());
        };
        let hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !(hex(version, 2) && version != "ff" && hex(trace, 32) && hex(span, 16) && hex(flags, 2))
        {
            return Err(bad());
        }
        let trace_id = TraceId::from_hex(trace).map_err(|_| bad())?;
        let span_id = SpanId::from_hex(span).map_err(|_| bad())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| bad())?;
        if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
            return Err(bad());
        }
        // Boxed: a call's options stay one pointer bigger, not a span context bigger.
        Ok(TraceParent(Box::new((
            text.trim().to_string(),
            SpanContext::new(
                trace_id,
                span_id,
                TraceFlags::new(flags),
                true,
                TraceState::default(),
            ),
        ))))
    }

    /// The header value as given.
    pub fn as_str(&self) -> &str {
        &self.0 .0
    }
}

struct Provider {
    pid: u32,
    endpoint: String,
    provider: SdkTracerProvider,
}

static PROVIDERS: Mutex<Vec<Provider>> = Mutex::new(Vec::new());
static AT_EXIT: Once = Once::new();

fn providers() -> MutexGuard<'static, Vec<Provider>> {
    PROVIDERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The provider exporting to `endpoint` from this process, built on first use.
fn provider(endpoint: &str) -> Option<SdkTracerProvider> {
    let pid = std::process::id();
    let mut all = providers();
    if let Some(p) = all.iter().find(|p| p.pid == pid && p.endpoint == endpoint) {
        return Some(p.provider.clone());
    }
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .ok()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    all.push(Provider {
        pid,
        endpoint: endpoint.to_string(),
        provider: provider.clone(),
    });
    AT_EXIT.call_once(|| {
        // SAFETY: `flush_at_exit` is a plain `extern "C" fn()` that catches every panic.
        unsafe {
            libc::atexit(flush_at_exit);
        }
    });
    Some(provider)
}

extern "C" fn flush_at_exit() {
    let _ = std::panic::catch_unwind(|| flush_telemetry(EXIT_FLUSH));
}

/// Exports the spans still queued, waiting at most `timeout`; `true` when every provider of
/// this process finished in time. Runs at process exit by itself; the Node and Python packages
/// also call it from their own exit hooks.
pub fn flush_telemetry(timeout: Duration) -> bool {
    let pid = std::process::id();
    let mine: Vec<SdkTracerProvider> = providers()
        .iter()
        .filter(|p| p.pid == pid)
        .map(|p| p.provider.clone())
        .collect();
    if mine.is_empty() {
        return true;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // The flush blocks on the exporter; a thread of its own lets the wait be bounded.
    let started = std::thread::Builder::new()
        .name("claw-llm-otel-flush".into())
        .spawn(move || {
            let ok = mine.iter().all(|p| p.force_flush().is_ok());
            let _ = tx.send(ok);
        });
    started.is_ok() && rx.recv_timeout(timeout).unwrap_or(false)
}

/// The span of one call, while it runs.
pub(crate) struct CallSpan {
    span: Span,
    capture_content: bool,
}

/// What the call span records of a successful answer.
#[derive(Default)]
pub(crate) struct Answer {
    pub id: Option<String>,
    pub model: Option<String>,
    pub finish_reasons: Vec<String>,
    /// The choices' messages, when content is captured.
    pub output: Option<String>,
}

impl Answer {
    /// Reads a completion (or a stream's final completion, or an embeddings list).
    pub fn from_value(v: &serde_json::Value, capture: bool) -> Answer {
        let s = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let choices = v.get("choices").and_then(serde_json::Value::as_array);
        let finish_reasons = choices
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("finish_reason").and_then(serde_json::Value::as_str))
            .map(str::to_string)
            .collect();
        let output = capture
            .then(|| {
                let messages: Vec<&serde_json::Value> = choices
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("message").or_else(|| c.get("delta")))
                    .collect();
                (!messages.is_empty()).then(|| serde_json::to_string(&messages).unwrap_or_default())
            })
            .flatten();
        Answer {
            id: s("id"),
            model: s("model"),
            finish_reasons,
            output,
        }
    }
}

/// What a span is about when it starts.
pub(crate) struct Start<'a> {
    pub settings: &'a Settings,
    /// `chat` or `embeddings`.
    pub operation: &'static str,
    pub model: &'a str,
    /// The URL of the call's first endpoint.
    pub url: &'a str,
    pub parent: Option<&'a TraceParent>,
    /// The messages (chat) or input (embeddings), serialized only when content is captured.
    pub input: Option<&'a serde_json::Value>,
}

impl CallSpan {
    /// Starts the span of a call; `None` when no provider can be built (the call goes on).
    pub fn start(s: Start<'_>) -> Option<CallSpan> {
        let provider = provider(&s.settings.traces_endpoint)?;
        let tracer = provider.tracer_with_scope(
            InstrumentationScope::builder("claw-llm")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        let parent = match s.parent {
            Some(p) => Context::new().with_remote_span_context(p.0 .1.clone()),
            None => Context::current(),
        };
        let url = reqwest::Url::parse(s.url).ok();
        let host = url.as_ref().and_then(|u| u.host_str()).unwrap_or("");
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", s.operation),
            KeyValue::new("gen_ai.provider.name", provider_name(host)),
            KeyValue::new("gen_ai.request.model", s.model.to_string()),
            KeyValue::new("server.address", host.to_string()),
        ];
        if let Some(port) = url.as_ref().and_then(|u| u.port_or_known_default()) {
            attrs.push(KeyValue::new("server.port", i64::from(port)));
        }
        if s.settings.capture_content {
            if let Some(input) = s.input {
                let key = if s.operation == "chat" {
                    "gen_ai.input.messages"
                } else {
                    "gen_ai.embeddings.input"
                };
                attrs.push(KeyValue::new(key, input.to_string()));
            }
        }
        let span = tracer
            .span_builder(format!("{} {}", s.operation, s.model))
            .with_kind(SpanKind::Client)
            .with_attributes(attrs)
            .start_with_context(&tracer, &parent);
        Some(CallSpan {
            span,
            capture_content: s.settings.capture_content,
        })
    }

    /// The W3C `traceparent` of this span, for the gateway.
    pub fn traceparent(&self) -> String {
        let c = self.span.span_context();
        format!(
            "00-{}-{}-{:02x}",
            c.trace_id(),
            c.span_id(),
            c.trace_flags().to_u8()
        )
    }

    pub fn capture_content(&self) -> bool {
        self.capture_content
    }

    /// One attempt, as an event of the call's span.
    pub fn attempt(&mut self, e: &crate::events::Event) {
        let mut attrs = vec![
            KeyValue::new("claw_llm.attempt", i64::from(e.attempt)),
            KeyValue::new("url.full", e.endpoint.clone()),
            KeyValue::new("claw_llm.duration_ms", e.ms),
        ];
        if let Some(m) = &e.model {
            attrs.push(KeyValue::new("gen_ai.request.model", m.clone()));
        }
        if let Some(k) = e.key_index {
            attrs.push(KeyValue::new("claw_llm.key_index", k as i64));
        }
        if let Some(s) = e.status {
            attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
        }
        if let Some(code) = e.code {
            attrs.push(KeyValue::new("error.type", code));
        }
        if let Some(id) = &e.request_id {
            attrs.push(KeyValue::new("claw_llm.request_id", id.clone()));
        }
        if let Some(ms) = e.retry_delay_ms {
            attrs.push(KeyValue::new("claw_llm.retry_delay_ms", ms as i64));
        }
        self.span.add_event("attempt", attrs);
    }

    /// Ends the span with the call's outcome.
    pub fn end(
        mut self,
        usage: Option<crate::events::Usage>,
        answer: Option<Answer>,
        error: Option<&Error>,
    ) {
        if let Some(u) = usage {
            self.span.set_attribute(KeyValue::new(
                "gen_ai.usage.input_tokens",
                u.prompt_tokens as i64,
            ));
            self.span.set_attribute(KeyValue::new(
                "gen_ai.usage.output_tokens",
                u.completion_tokens as i64,
            ));
        }
        if let Some(a) = answer {
            if let Some(id) = a.id {
                self.span
                    .set_attribute(KeyValue::new("gen_ai.response.id", id));
            }
            if let Some(m) = a.model {
                self.span
                    .set_attribute(KeyValue::new("gen_ai.response.model", m));
            }
            if !a.finish_reasons.is_empty() {
                let reasons: Vec<StringValue> = a
                    .finish_reasons
                    .into_iter()
                    .map(StringValue::from)
                    .collect();
                self.span.set_attribute(KeyValue::new(
                    "gen_ai.response.finish_reasons",
                    Value::Array(Array::String(reasons)),
                ));
            }
            if let Some(out) = a.output {
                self.span
                    .set_attribute(KeyValue::new("gen_ai.output.messages", out));
            }
        }
        if let Some(e) = error {
            self.span
                .set_attribute(KeyValue::new("error.type", e.code()));
            if let Some(s) = e.status() {
                self.span
                    .set_attribute(KeyValue::new("http.response.status_code", i64::from(s)));
            }
            self.span.set_status(Status::error(e.to_string()));
        }
        self.span.end();
    }
}

/// `gen_ai.provider.name` from the gateway's host: the conventions' name where the host is
/// the provider's own API, else `openai` (the protocol every gateway here speaks).
fn provider_name(host: &str) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        ("api.openai.com", "openai"),
        ("openai.azure.com", "azure.ai.openai"),
        ("api.deepseek.com", "deepseek"),
        ("api.groq.com", "groq"),
        ("api.mistral.ai", "mistral_ai"),
        ("api.x.ai", "x_ai"),
        ("api.perplexity.ai", "perplexity"),
        ("dashscope.aliyuncs.com", "alibaba.dashscope"),
        ("dashscope-intl.aliyuncs.com", "alibaba.dashscope"),
        ("api.moonshot.cn", "moonshot"),
        ("open.bigmodel.cn", "zhipu"),
        ("api.minimax.chat", "minimax"),
        ("api.minimaxi.com", "minimax"),
    ];
    KNOWN
        .iter()
        .find(|(h, _)| host == *h || host.ends_with(&format!(".{h}")))
        .map_or("openai", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;

    #[test]
    fn traceparent_accepts_w3c_and_refuses_the_rest() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(TraceParent::parse(ok).unwrap().as_str(), ok);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            let err = TraceParent::parse(bad).unwrap_err();
            assert_eq!(err.code(), "LLM_CLIENT_CONFIG", "{bad}");
        }
    }

    #[test]
    fn telemetry_is_on_only_with_a_collector_and_not_off() {
        let get = env(&[]);
        assert_eq!(settings(&get).unwrap(), None);
        let get = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]);
        let s = settings(&get).unwrap().unwrap();
        assert_eq!(s.traces_endpoint, "http://127.0.0.1:4318/v1/traces");
        assert!(!s.capture_content);
        let get = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/t"),
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "TRUE"),
        ]);
        let s = settings(&get).unwrap().unwrap();
        assert_eq!(s.traces_endpoint, "http://127.0.0.1:9/t");
        assert!(s.capture_content);
        let get = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("LLM_OTEL", "off"),
        ]);
        assert_eq!(settings(&get).unwrap(), None);
        let get = env(&[("LLM_OTEL", "maybe")]);
        assert_eq!(settings(&get).unwrap_err().code(), "LLM_CLIENT_CONFIG");
    }

    #[test]
    fn provider_names_follow_the_conventions_where_known() {
        assert_eq!(provider_name("api.openai.com"), "openai");
        assert_eq!(provider_name("api.deepseek.com"), "deepseek");
        assert_eq!(provider_name("127.0.0.1"), "openai");
    }
}
