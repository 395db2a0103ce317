//! A streamed chat completion: SSE frames in, chunk objects out, with the accumulated final
//! completion, idle timeout, truncation detection and cancellation (docs/behaviour.md, "Streams" and "Time").

use crate::accumulate::Accumulator;
use crate::check::RawResponse;
use crate::config::LogLevel;
use crate::error::snippet;
use crate::error::{http_detail, Error, HttpErrorDetail, Result, StreamFailure};
use crate::log;
use crate::reasoning::StreamSplitter;
use crate::sse::{SseDecoder, SseEvent};
use bytes::Bytes;
use futures::stream::Stream;
use futures::FutureExt;
use serde_json::Value;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// What a stream needs to know about the call that opened it.
pub(crate) struct StreamMeta {
    pub model: String,
    pub log: LogLevel,
    pub idle: Duration,
    pub max_event_bytes: usize,
    pub cancel: CancellationToken,
    /// The log sink of the call that opened the stream (see [`crate::with_log_sink`]).
    pub log_sink: Option<crate::LogSink>,
    /// Move a leading `<think>` block of each choice's content to `reasoning_content`.
    pub split: bool,
    /// The call's observers: its call event, statistics and span end with the stream.
    pub obs: Option<crate::observe::CallObs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Done,
    Failed,
}

/// A streamed chat completion: a [`Stream`] of `chat.completion.chunk` objects.
///
/// Dropping it (or breaking out of the loop) cancels the request and closes the connection.
///
/// ```no_run
/// # async fn demo() -> claw_llm::Result<()> {
/// use futures::StreamExt;
/// use serde_json::json;
/// let client = claw_llm::Client::from_env()?;
/// let mut stream = client
///     .stream("qwen-plus", json!([{"role": "user", "content": "hi"}]), Default::default(), Default::default())
///     .await?;
/// while let Some(chunk) = stream.next().await {
///     print!("{}", chunk?["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
/// }
/// println!("\n{}", stream.final_completion()["usage"]);
/// # Ok(()) }
/// ```
pub struct ChatStream {
    body: Option<Body>,
    decoder: SseDecoder,
    acc: Accumulator,
    queued: VecDeque<(String, Value)>,
    pending_error: Option<Error>,
    /// Whether the gateway sent `data: [DONE]` (the doctor reports it).
    saw_done: bool,
    state: State,
    status: u16,
    request_id: Option<String>,
    meta: StreamMeta,
    /// See [`ChatStream::attempts_detail`].
    attempts_detail: Vec<crate::AttemptDetail>,
    idle_timer: Pin<Box<Sleep>>,
    /// When the last event carrying data arrived (or the head, before the first): the idle
    /// timeout counts from here. Comments, pings and empty events do not move it.
    last_progress: Instant,
    /// Whether any event carrying data arrived (to word a stream that closes before any).
    got_data: bool,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    splitter: Option<StreamSplitter>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("status", &self.status)
            .field("request_id", &self.request_id)
            .field("state", &self.state)
            .field("chunks", &self.acc.chunks())
            .finish()
    }
}

impl ChatStream {
    fn new(status: u16, request_id: Option<String>, body: Option<Body>, meta: StreamMeta) -> Self {
        let now = Instant::now();
        ChatStream {
            body,
            decoder: SseDecoder::new(meta.max_event_bytes),
            acc: Accumulator::default(),
            queued: VecDeque::new(),
            pending_error: None,
            saw_done: false,
            state: State::Open,
            status,
            request_id,
            idle_timer: Box::pin(tokio::time::sleep_until(now + meta.idle)),
            last_progress: now,
            got_data: false,
            cancelled: Box::pin(meta.cancel.clone().cancelled_owned()),
            splitter: meta.split.then(StreamSplitter::default),
            meta,
            attempts_detail: Vec::new(),
        }
    }

    pub(crate) fn from_response(mut resp: reqwest::Response, meta: StreamMeta) -> Self {
        let status = resp.status().as_u16();
        let request_id = crate::retry::request_id(resp.headers());
        let trail = resp.extensions_mut().remove::<crate::route::Trail>();
        let mut stream = ChatStream::new(
            status,
            request_id,
            Some(Box::pin(resp.bytes_stream())),
            meta,
        );
        stream.attempts_detail = trail.map(|t| t.0).unwrap_or_default();
        stream
    }

    /// Where every attempt went before this stream opened, when the call had fallbacks
    /// (endpoints, keys or models) to choose from; empty otherwise.
    pub fn attempts_detail(&self) -> &[crate::AttemptDetail] {
        &self.attempts_detail
    }

    /// A gateway that ignored `stream: true` and answered one JSON completion: replay it as a
    /// single chunk so callers see the same shape.
    pub(crate) fn from_completion(raw: RawResponse, meta: StreamMeta) -> Result<Self> {
        let mut value = raw.json()?;
        if meta.split {
            crate::reasoning::split_completion(&mut value);
        }
        if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
            for c in choices {
                if let Some(obj) = c.as_object_mut() {
                    if let Some(m) = obj.remove("message") {
                        obj.insert("delta".into(), m);
                    }
                }
            }
        }
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "object".into(),
                Value::String("chat.completion.chunk".into()),
            );
        }
        let mut s = ChatStream::new(raw.status, raw.request_id, None, meta);
        s.attempts_detail = raw.attempts_detail;
        s.acc.push(&value);
        s.queued.push_back((value.to_string(), value));
        s.state = State::Done;
        Ok(s)
    }

    /// The completion accumulated from the chunks seen so far (all of it once the stream ended).
    pub fn final_completion(&self) -> Value {
        self.acc.final_completion()
    }

    /// The gateway's request id (`x-request-id`).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The HTTP status of the stream's response.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A token that aborts this stream from anywhere (another task, a binding's `abort()`).
    pub fn abort_handle(&self) -> CancellationToken {
        self.meta.cancel.clone()
    }

    /// Aborts the stream: the connection is closed and the next read yields `ABORT_ERR`.
    pub fn abort(&mut self) {
        if self.state == State::Open {
            self.settle(Some(&Error::Aborted));
        }
        self.meta.cancel.cancel();
        self.body = None;
    }

    /// Whether the gateway ended the stream with `data: [DONE]` (not just a finish_reason and EOF).
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    /// Whether the stream ended (normally or not).
    pub fn is_finished(&self) -> bool {
        self.state != State::Open && self.queued.is_empty()
    }

    /// The next chunk as the raw JSON text the gateway sent (bindings parse it themselves).
    pub async fn next_raw(&mut self) -> Option<Result<String>> {
        futures::future::poll_fn(|cx| self.poll_chunk(cx))
            .await
            .map(|r| r.map(|(raw, _)| raw))
    }

    /// Up to `max` chunks that are ready now (waiting only when none is), as raw JSON text.
    /// Bindings use it to cross the language boundary once per batch instead of once per chunk.
    pub async fn next_batch_raw(&mut self, max: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        match self.next_raw().await {
            None => return Ok(out),
            Some(r) => out.push(r?),
        }
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        while out.len() < max.max(1) {
            if self.queued.is_empty() && self.decoder.pending() == 0 {
                break;
            }
            match self.poll_chunk(&mut cx) {
                Poll::Ready(Some(Ok((raw, _)))) => out.push(raw),
                Poll::Ready(Some(Err(e))) => {
                    // Deliver what we have; the error surfaces on the next call.
                    self.queued.clear();
                    self.pending_error = Some(e);
                    break;
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// The call is over (ended, failed or dropped): its observers learn how.
    fn settle(&mut self, error: Option<&Error>) {
        let Some(obs) = self.meta.obs.take() else {
            return;
        };
        let usage = self.acc.usage().and_then(crate::Usage::from_value);
        let answer = obs.wants_answer().then(|| {
            crate::otel::Answer::from_value(&self.acc.final_completion(), obs.captures_content())
        });
        obs.finish(
            Some(self.status),
            self.request_id.clone(),
            usage,
            answer,
            error,
        );
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<(String, Value)>>> {
        self.settle(Some(&err));
        self.state = State::Failed;
        self.body = None;
        if !matches!(err, Error::Aborted) {
            let sink = self.meta.log_sink.clone().or_else(log::call_sink);
            log::emit_to(
                sink.as_ref(),
                self.meta.log,
                LogLevel::Error,
                &log::error_line(&self.meta.model, &err),
            );
        }
        Poll::Ready(Some(Err(err)))
    }

    fn stream_error(&self, kind: StreamFailure, message: String) -> Error {
        Error::Stream {
            message,
            request_id: self.request_id.clone(),
            frame: None,
            kind,
        }
    }

    /// The error of an error frame: its summary as the message, its fields kept.
    fn frame_error(&self, data: &str) -> Error {
        let mut detail: HttpErrorDetail = http_detail(
            self.status,
            &reqwest::header::HeaderMap::new(),
            data.as_bytes(),
        );
        detail.request_id = self.request_id.clone();
        Error::Stream {
            message: detail.summary.clone(),
            request_id: self.request_id.clone(),
            frame: Some(Box::new(detail)),
            kind: StreamFailure::ErrorFrame,
        }
    }

    /// A stream that ended (cleanly or not) before any event carrying data: gateways such as
    /// llm_adapter_claw do this when their upstream fails, so say that instead of a wire detail.
    fn closed_before_any_event(&self) -> Error {
        self.stream_error(
            StreamFailure::ClosedBeforeAnyEvent,
            "the gateway closed the stream before sending any event (its upstream probably failed)"
                .into(),
        )
    }

    /// Turns one SSE event into a chunk, the end, an error, or nothing (skip).
    fn handle(&mut self, ev: SseEvent) -> Option<std::result::Result<(String, Value), Error>> {
        if ev.data == "[DONE]" {
            self.saw_done = true;
            self.state = State::Done;
            self.body = None; // release the connection now, whatever the server does next
                              // Text a splitter still holds (no finish_reason came) goes out as one last chunk.
            let rest = self
                .splitter
                .as_mut()
                .and_then(StreamSplitter::take_remaining)?;
            self.acc.push(&rest);
            return Some(Ok((rest.to_string(), rest)));
        }
        if ev.data.trim().is_empty() || ev.event.as_deref() == Some("ping") {
            return None; // keep-alive pings carry nothing for the caller
        }
        // Everything from here on carries data: it is progress for the idle timeout.
        self.last_progress = Instant::now();
        if !self.got_data {
            if let Some(obs) = &self.meta.obs {
                obs.first_token();
            }
        }
        self.got_data = true;
        if ev.event.as_deref() == Some("error") {
            return Some(Err(self.frame_error(&ev.data)));
        }
        let value = match serde_json::from_str::<Value>(&ev.data) {
            Ok(v @ Value::Object(_)) => v,
            Ok(other) => {
                return Some(Err(self.stream_error(
                    StreamFailure::Malformed,
                    format!(
                        "malformed chunk in the stream (a JSON {}, not an object): {}",
                        crate::check::json_kind(&other),
                        snippet(ev.data.as_bytes())
                    ),
                )))
            }
            Err(e) => {
                return Some(Err(self.stream_error(
                    StreamFailure::Malformed,
                    format!(
                        "malformed chunk in the stream ({}): {}",
                        crate::check::json_problem(&e),
                        snippet(ev.data.as_bytes())
                    ),
                )))
            }
        };
        if value.get("error").is_some_and(|e| !e.is_null()) && value.get("choices").is_none() {
            return Some(Err(self.frame_error(&ev.data)));
        }
        let (mut data, mut value) = (ev.data, value);
        if let Some(splitter) = self.splitter.as_mut() {
            if splitter.chunk(&mut value) {
                data = value.to_string();
            }
        }
        self.acc.push(&value);
        Some(Ok((data, value)))
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(String, Value)>>> {
        let polled = self.poll_next_chunk(cx);
        if let Poll::Ready(None) = polled {
            self.settle(None);
        }
        polled
    }

    fn poll_next_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(String, Value)>>> {
        if let Some(e) = self.pending_error.take() {
            return self.fail(e);
        }
        if let Some(item) = self.queued.pop_front() {
            return Poll::Ready(Some(Ok(item)));
        }
        loop {
            if self.state != State::Open {
                return Poll::Ready(None);
            }
            while let Some(ev) = self.decoder.next_event() {
                match self.handle(ev) {
                    Some(Ok(item)) => return Poll::Ready(Some(Ok(item))),
                    Some(Err(e)) => return self.fail(e),
                    None if self.state == State::Done => return Poll::Ready(None),
                    None => {}
                }
            }
            if self.cancelled.as_mut().poll(cx).is_ready() {
                return self.fail(Error::Aborted);
            }
            let Some(body) = self.body.as_mut() else {
                return self.end_of_stream();
            };
            match body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if let Err(e) = self.decoder.feed(&bytes) {
                        let err = self.stream_error(StreamFailure::Malformed, e.to_string());
                        return self.fail(err);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    if !self.got_data {
                        let err = self.closed_before_any_event();
                        return self.fail(err);
                    }
                    let cause = crate::error::cause_in_words(&e);
                    let err = self.stream_error(
                        StreamFailure::ConnectionLost,
                        format!("connection lost mid-stream: {cause}"),
                    );
                    return self.fail(err);
                }
                Poll::Ready(None) => {
                    self.body = None;
                    return self.end_of_stream();
                }
                Poll::Pending => {
                    // The timer is re-armed lazily: only when it fires do we look at the last read.
                    loop {
                        if self.idle_timer.poll_unpin(cx).is_pending() {
                            return Poll::Pending;
                        }
                        let due = self.last_progress + self.meta.idle;
                        if Instant::now() >= due {
                            let err = Error::Timeout {
                                timeout_ms: self.meta.idle.as_millis() as u64,
                                attempts: 1,
                                last: None,
                            };
                            return self.fail(err);
                        }
                        self.idle_timer.as_mut().reset(due);
                    }
                }
            }
        }
    }

    fn end_of_stream(&mut self) -> Poll<Option<Result<(String, Value)>>> {
        if self.acc.has_finish_reason() {
            self.state = State::Done;
            return Poll::Ready(None);
        }
        if !self.got_data {
            let err = self.closed_before_any_event();
            return self.fail(err);
        }
        let err = self.stream_error(
            StreamFailure::Truncated,
            "truncated: the stream ended without [DONE] and without a finish_reason".into(),
        );
        self.fail(err)
    }
}

impl Drop for ChatStream {
    /// A stream dropped before its end was aborted by its caller; one that got to `[DONE]` (or
    /// its last chunk) but was not read to `None` ended.
    fn drop(&mut self) {
        if self.meta.obs.is_some() {
            if self.state == State::Done {
                self.settle(None);
            } else {
                self.settle(Some(&Error::Aborted));
            }
        }
    }
}

impl Stream for ChatStream {
    type Item = Result<Value>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|o| o.map(|r| r.map(|(_, v)| v)))
    }
}
