//! One call, as the observers see it: its attempts and its outcome go to the statistics, to
//! the event listeners and to its OpenTelemetry span.
//!
//! The statistics are always kept. Events are built only when someone listens and the span
//! only when a collector is set; a call with neither carries no more than a start time and two
//! counters.

use crate::attempt::Reply;
use crate::config::Config;
use crate::error::Error;
use crate::events::{self, Event, EventType, Listener, Usage};
use crate::options::CallOptions;
use crate::otel::{Answer, CallSpan, Start};
use crate::retry::Failed;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What a call is: the names events and spans use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Chat,
    Stream,
    Embeddings,
    Models,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Stream => "stream",
            Operation::Embeddings => "embeddings",
            Operation::Models => "models",
        }
    }

    /// The GenAI conventions' `gen_ai.operation.name` (a stream is a chat).
    fn span_operation(self) -> Option<&'static str> {
        match self {
            Operation::Chat | Operation::Stream => Some("chat"),
            Operation::Embeddings => Some("embeddings"),
            Operation::Models => None,
        }
    }
}

/// One call under observation, from its start to [`CallObs::finish`].
pub(crate) struct CallObs {
    started: Instant,
    operation: Operation,
    model: Mutex<String>,
    /// Requests sent (a batched embeddings call sends several) and attempts made in all.
    requests: AtomicU32,
    attempts: AtomicU32,
    live: Option<Box<Live>>,
}

/// The part only a call that is listened to or traced has.
struct Live {
    own: [Option<Listener>; 2],
    /// Whether events are built (a listener exists), besides the span.
    events: bool,
    otel: Option<crate::otel::Settings>,
    traceparent: Option<crate::otel::TraceParent>,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    endpoint: String,
    span: Option<CallSpan>,
    span_tried: bool,
    /// The last attempt, kept until its retry delay is known (or the call ends).
    pending: Option<Event>,
    ttft_ms: Option<f64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One attempt's outcome, as it is reported.
pub(crate) struct AttemptFacts<'a> {
    pub url: &'a str,
    pub key_index: Option<usize>,
    pub model: Option<&'a str>,
    pub number: u32,
    pub started: tokio::time::Instant,
}

impl CallObs {
    /// Starts observing a call of `cfg` with these options.
    pub fn new(cfg: &Config, opts: &CallOptions, operation: Operation, model: &str) -> CallObs {
        let own = [opts.on_event.clone(), cfg.on_event().cloned()];
        let events = own.iter().any(Option::is_some) || events::has_global_listeners();
        let otel = cfg
            .otel()
            .filter(|_| operation.span_operation().is_some())
            .cloned();
        let live = (events || otel.is_some()).then(|| {
            Box::new(Live {
                own,
                events,
                otel,
                traceparent: opts.traceparent.clone(),
                state: Mutex::new(LiveState::default()),
            })
        });
        CallObs {
            started: Instant::now(),
            operation,
            model: Mutex::new(model.to_string()),
            requests: AtomicU32::new(0),
            attempts: AtomicU32::new(0),
            live,
        }
    }

    /// The first request of the call is about to go out to `url` for `model` (the model
    /// resolved); `body` is the request, read only when message content is captured.
    /// Returns the `traceparent` to send: the call span's, else the caller's own.
    pub fn begin(&self, model: &str, url: &str, body: &[u8], opts: &CallOptions) -> Option<String> {
        let passthrough = || opts.traceparent.as_ref().map(|t| t.as_str().to_string());
        {
            let mut m = lock(&self.model);
            if m.as_str() != model {
                *m = model.to_string();
            }
        }
        let Some(live) = self.live.as_deref() else {
            return passthrough();
        };
        let mut st = lock(&live.state);
        if st.endpoint.is_empty() {
            st.endpoint = crate::url::redacted(url);
        }
        if !st.span_tried {
            st.span_tried = true;
            if let (Some(settings), Some(op)) = (&live.otel, self.operation.span_operation()) {
                let input = settings
                    .capture_content
                    .then(|| serde_json::from_slice::<Value>(body).ok())
                    .flatten();
                let input = input.as_ref().map(|v| match op {
                    "chat" => &v["messages"],
                    _ => &v["input"],
                });
                st.span = CallSpan::start(Start {
                    settings,
                    operation: op,
                    model,
                    url,
                    parent: live.traceparent.as_ref(),
                    input,
                });
            }
        }
        st.span
            .as_ref()
            .map(CallSpan::traceparent)
            .or_else(passthrough)
    }

    /// One request's attempts, once it is over.
    pub fn add_request(&self, attempts: u32) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.attempts.fetch_add(attempts, Ordering::Relaxed);
    }

    /// One attempt is over.
    pub fn attempt(&self, f: AttemptFacts<'_>, result: &std::result::Result<Reply, Failed>) {
        let Some(live) = self.live.as_deref() else {
            return;
        };
        let (status, code, message, request_id) = match result {
            Ok(reply) => {
                let (status, id) = reply_head(reply);
                (Some(status), None, None, id)
            }
            Err(failed) => (
                failed.err.status(),
                Some(failed.err.code()),
                Some(failed.err.to_string()),
                failed.err.request_id().map(str::to_string),
            ),
        };
        let event = Event {
            kind: EventType::Attempt,
            operation: self.operation.name(),
            model: f.model.map(str::to_string),
            endpoint: crate::url::redacted(f.url),
            attempt: f.number,
            key_index: f.key_index,
            status,
            code,
            message,
            ok: result.is_ok(),
            ms: ms(f.started.elapsed()),
            ttft_ms: None,
            request_id,
            usage: None,
            retry_delay_ms: None,
        };
        let earlier = lock(&live.state).pending.replace(event);
        if let Some(e) = earlier {
            self.publish(live, e);
        }
    }

    /// The last failed attempt is retried after `wait`.
    pub fn retry(&self, wait: Duration) {
        let Some(live) = self.live.as_deref() else {
            return;
        };
        let pending = lock(&live.state).pending.take();
        if let Some(mut e) = pending {
            e.retry_delay_ms = Some(wait.as_millis() as u64);
            self.publish(live, e);
        }
    }

    /// A stream's first event carrying data arrived.
    pub fn first_token(&self) {
        if let Some(live) = self.live.as_deref() {
            let mut st = lock(&live.state);
            if st.ttft_ms.is_none() {
                st.ttft_ms = Some(ms(self.started.elapsed()));
            }
        }
    }

    /// Whether the span wants the answer's facts (id, model, finish reasons).
    pub fn wants_answer(&self) -> bool {
        self.live
            .as_deref()
            .is_some_and(|l| lock(&l.state).span.is_some())
    }

    /// Whether the span records message content.
    pub fn captures_content(&self) -> bool {
        self.live.as_deref().is_some_and(|l| {
            lock(&l.state)
                .span
                .as_ref()
                .is_some_and(CallSpan::capture_content)
        })
    }

    /// The call of a non-streamed reply is over.
    pub fn finish_reply(self, result: &crate::Result<Reply>) {
        match result {
            Ok(reply) => {
                let (usage, answer) = match reply {
                    Reply::Parsed(raw, value) => (
                        raw.usage
                            .or_else(|| value.get("usage").and_then(Usage::from_value)),
                        self.wants_answer()
                            .then(|| Answer::from_value(value, self.captures_content())),
                    ),
                    Reply::Body(raw) => (
                        raw.usage,
                        self.wants_answer()
                            .then(|| {
                                serde_json::from_slice::<Value>(&raw.body)
                                    .ok()
                                    .map(|v| Answer::from_value(&v, self.captures_content()))
                            })
                            .flatten(),
                    ),
                    Reply::Stream(_) => (None, None),
                };
                // The request id goes only into a call event: no copy when nobody listens.
                let (status, request_id) = match self.live {
                    Some(_) => reply_head(reply),
                    None => (0, None),
                };
                self.finish(Some(status), request_id, usage, answer, None);
            }
            Err(e) => self.finish(None, None, None, None, Some(e)),
        }
    }

    /// The call is over: statistics, the last attempt's event, the call's event, the span.
    pub fn finish(
        self,
        status: Option<u16>,
        request_id: Option<String>,
        usage: Option<Usage>,
        answer: Option<Answer>,
        error: Option<&Error>,
    ) {
        let elapsed = self.started.elapsed();
        let (requests, attempts) = (
            self.requests.load(Ordering::Relaxed),
            self.attempts.load(Ordering::Relaxed),
        );
        let model = std::mem::take(&mut *lock(&self.model));
        let stats_model = if self.operation == Operation::Models {
            "models"
        } else {
            model.as_str()
        };
        crate::stats::record(
            stats_model,
            error.map(Error::code),
            attempts.saturating_sub(requests),
            usage,
            elapsed,
        );
        let Some(live) = self.live.as_deref() else {
            return;
        };
        let (pending, mut span, endpoint, ttft_ms) = {
            let mut st = lock(&live.state);
            (
                st.pending.take(),
                st.span.take(),
                std::mem::take(&mut st.endpoint),
                st.ttft_ms,
            )
        };
        if let Some(e) = pending {
            deliver(live, span.as_mut(), e);
        }
        if let Some(span) = span {
            span.end(usage, answer, error);
        }
        if live.events {
            let call = Event {
                kind: EventType::Call,
                operation: self.operation.name(),
                model: (self.operation != Operation::Models).then_some(model),
                endpoint,
                attempt: attempts,
                key_index: None,
                status: status.or_else(|| error.and_then(Error::status)),
                code: error.map(Error::code),
                message: error.map(Error::to_string),
                ok: error.is_none(),
                ms: ms(elapsed),
                ttft_ms,
                request_id: request_id
                    .or_else(|| error.and_then(|e| e.request_id().map(str::to_string))),
                usage,
                retry_delay_ms: None,
            };
            events::emit(call, live.own.clone());
        }
    }

    /// An attempt's event goes to the span and to the listeners.
    fn publish(&self, live: &Live, event: Event) {
        let mut st = lock(&live.state);
        let span = st.span.as_mut();
        deliver(live, span, event);
    }
}

fn deliver(live: &Live, span: Option<&mut CallSpan>, event: Event) {
    if let Some(span) = span {
        span.attempt(&event);
    }
    if live.events {
        events::emit(event, live.own.clone());
    }
}

/// A reply's status and request id.
fn reply_head(reply: &Reply) -> (u16, Option<String>) {
    match reply {
        Reply::Body(raw) | Reply::Parsed(raw, _) => (raw.status, raw.request_id.clone()),
        Reply::Stream(resp) => (
            resp.status().as_u16(),
            crate::retry::request_id(resp.headers()),
        ),
    }
}
