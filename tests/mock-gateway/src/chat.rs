//! Chat answers: the `ok` completion (echo, usage, `mock_echo`, provider extra), and the
//! scenarios that wrap or damage it (`flaky`, `trickle`, `stall-body`, `reset-body`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::http::{stream_head, Conn, Response};
use crate::scenario::{send, After, Ctx, Route, Spec};
use crate::{embeddings, mem0, stream};

/// What the healthy answer to a request is: a complete body or a list of SSE events.
pub enum Payload {
    Body(Response),
    Stream(Vec<Vec<u8>>),
}

/// Seconds since the epoch (the `created` field).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The text of a message's `content`: a string, or the `text` parts of an array.
pub fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                other => other.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A crude token count: whitespace-separated words.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Prompt tokens of a chat request (at least 1).
pub fn prompt_tokens(ctx: &Ctx<'_>) -> u64 {
    ctx.messages()
        .iter()
        .map(|m| count_tokens(&content_text(m)))
        .sum::<u64>()
        .max(1)
}

/// `"echo: "` + the content of the last message.
pub fn echo_content(ctx: &Ctx<'_>) -> String {
    let last = ctx.messages().last().map(content_text).unwrap_or_default();
    format!("echo: {last}")
}

/// The full `ok` chat completion JSON with the given assistant content.
pub fn completion_body(ctx: &Ctx<'_>, content: &str) -> String {
    let prompt = prompt_tokens(ctx);
    let completion = count_tokens(content).max(1);
    json!({
        "id": format!("chatcmpl-mock-{}", ctx.n),
        "object": "chat.completion",
        "created": now_secs(),
        "model": ctx.model(),
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion
        },
        "mock_echo": ctx.echo(),
        "x_provider_extra": {"kept": true}
    })
    .to_string()
}

/// The healthy answer for the request's own route.
pub fn payload(ctx: &Ctx<'_>, spec: &Spec, allow_mem0: bool) -> Result<Payload, String> {
    payload_for(ctx, spec, ctx.route, allow_mem0)
}

/// The healthy answer for `route`: an embeddings list, or a chat completion / stream
/// (answering mem0's prompts the way mem0 expects when `allow_mem0`).
pub fn payload_for(
    ctx: &Ctx<'_>,
    spec: &Spec,
    route: Route,
    allow_mem0: bool,
) -> Result<Payload, String> {
    if route == Route::Embeddings {
        return embeddings::respond(ctx).map(Payload::Body);
    }
    require_json_object(ctx)?;
    let mem0_content = if allow_mem0 {
        mem0::answer(ctx.messages(), false)
    } else {
        None
    };
    if ctx.wants_stream() {
        let tokens = match mem0_content {
            Some(content) => vec![content],
            None => stream::tokens_param(spec)?,
        };
        return Ok(Payload::Stream(stream::normal_events(ctx, &tokens, "\n")));
    }
    if mem0_content.is_none() && allow_mem0 && spec.name != "no-tools" {
        if let Some(name) = forced_tool(ctx) {
            return Ok(Payload::Body(Response::new(
                200,
                "application/json",
                tool_call_body(ctx, &name),
            )));
        }
    }
    let content = match mem0_content {
        Some(c) => c,
        None if allow_mem0 && spec.name != "no-json-mode" && wants_json_object(ctx) => {
            json!({"echo": ctx.messages().last().map(content_text).unwrap_or_default()}).to_string()
        }
        None => echo_content(ctx),
    };
    Ok(Payload::Body(Response::new(
        200,
        "application/json",
        completion_body(ctx, &content),
    )))
}

/// Whether the request asks for `response_format: {"type": "json_object"}` and its last message
/// says "JSON" (OpenAI refuses JSON mode without that word; the mock answers JSON only then, so
/// a prompt without it keeps the plain echo).
fn wants_json_object(ctx: &Ctx<'_>) -> bool {
    let asked = ctx
        .body
        .as_ref()
        .and_then(|b| b.pointer("/response_format/type"))
        .and_then(Value::as_str)
        == Some("json_object");
    asked
        && ctx
            .messages()
            .last()
            .is_some_and(|m| content_text(m).contains("JSON"))
}

/// The function a request forces with `tool_choice: {"type":"function","function":{"name":…}}`
/// (when that function is among its `tools`).
fn forced_tool(ctx: &Ctx<'_>) -> Option<String> {
    let body = ctx.body.as_ref()?;
    let name = body.pointer("/tool_choice/function/name")?.as_str()?;
    let listed = body
        .get("tools")?
        .as_array()?
        .iter()
        .any(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name));
    listed.then(|| name.to_string())
}

/// A completion that calls `name` with `{}`.
fn tool_call_body(ctx: &Ctx<'_>, name: &str) -> String {
    let prompt = prompt_tokens(ctx);
    json!({
        "id": format!("chatcmpl-mock-{}", ctx.n),
        "object": "chat.completion",
        "created": now_secs(),
        "model": ctx.model(),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_mock_{}", ctx.n),
                "type": "function",
                "function": {"name": name, "arguments": "{}"}
            }]},
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1},
        "mock_echo": ctx.echo()
    })
    .to_string()
}

/// The explicit `mem0` scenario: always answers as mem0's LLM would.
pub fn mem0_payload(ctx: &Ctx<'_>) -> Result<Payload, String> {
    require_json_object(ctx)?;
    let content = mem0::answer(ctx.messages(), true).unwrap_or_else(|| "{\"facts\": []}".into());
    if ctx.wants_stream() {
        return Ok(Payload::Stream(stream::normal_events(
            ctx,
            &[content],
            "\n",
        )));
    }
    Ok(Payload::Body(Response::new(
        200,
        "application/json",
        completion_body(ctx, &content),
    )))
}

fn require_json_object(ctx: &Ctx<'_>) -> Result<(), String> {
    match &ctx.body {
        Some(Value::Object(_)) => Ok(()),
        _ => Err("request body is not a JSON object".into()),
    }
}

/// Sends a payload normally.
pub async fn deliver(conn: &mut Conn, ctx: &Ctx<'_>, payload: Payload) -> After {
    match payload {
        Payload::Body(resp) => send(conn, ctx, &resp).await,
        Payload::Stream(events) => stream::write_events(conn, ctx, events).await,
    }
}

/// Sends a payload at `bps` bytes per second (the head at once).
pub async fn trickle(conn: &mut Conn, ctx: &Ctx<'_>, payload: Payload, bps: u64) -> After {
    let piece = (bps / 10).max(1) as usize;
    let interval = Duration::from_secs_f64(piece as f64 / bps as f64);
    let (head, body, chunked) = match payload {
        Payload::Body(resp) => (resp.head(&ctx.request_id, ctx.keep_alive), resp.body, false),
        Payload::Stream(events) => (
            stream_head(&ctx.request_id, ctx.keep_alive),
            events.concat(),
            true,
        ),
    };
    if conn.write_all(&head).await.is_err() {
        return After::Close;
    }
    for (i, part) in body.chunks(piece).enumerate() {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        let written = if chunked {
            conn.write_chunk(part).await
        } else {
            conn.write_all(part).await
        };
        if written.is_err() {
            return After::Close;
        }
    }
    if chunked && conn.end_chunks().await.is_err() {
        return After::Close;
    }
    if ctx.keep_alive {
        After::KeepAlive
    } else {
        After::Close
    }
}

/// `flaky`: the first `fails` requests per key fail, later ones succeed.
pub async fn flaky(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    let fails = spec.u64_or("fails", 1)?;
    let status = spec.status_or(503)?;
    let should_retry = match spec.get("should_retry") {
        Some(_) => Some(spec.bool_or("should_retry", true)?),
        None => None,
    };
    let key = spec.get("key").unwrap_or(&spec.raw).to_string();
    let attempt = ctx.state.flaky_attempt(&key);
    if attempt > fails {
        let payload = payload(ctx, spec, true)?;
        return Ok(deliver(conn, ctx, payload).await);
    }
    // `ms`: fail only after this long (a slow upstream, as a real gateway's 500 after seconds).
    let ms = spec.u64_or("ms", 0)?;
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let mut resp = Response::json(
        status,
        &json!({"error": {
            "message": format!("upstream temporarily unavailable (mock flaky failure {attempt} of {fails})"),
            "type": "one_api_error",
            "code": "mock_flaky",
            "param": null
        }}),
    );
    if let Some(v) = spec.get("retry_after") {
        resp = resp.with_header("retry-after", v);
    }
    if let Some(v) = spec.get("retry_after_ms") {
        resp = resp.with_header("retry-after-ms", v);
    }
    if let Some(v) = should_retry {
        resp = resp.with_header("x-should-retry", v.to_string());
    }
    Ok(send(conn, ctx, &resp).await)
}

/// The head and first half of an `ok` body, as bytes.
fn head_and_half(ctx: &Ctx<'_>) -> Vec<u8> {
    let body = completion_body(ctx, &echo_content(ctx));
    let resp = Response::new(200, "application/json", body);
    let mut bytes = resp.head(&ctx.request_id, ctx.keep_alive);
    bytes.extend_from_slice(&resp.body[..resp.body.len() / 2]);
    bytes
}

/// `stall-body`: the head (full Content-Length), half the body, then silence.
pub async fn stall_body(conn: &mut Conn, ctx: &Ctx<'_>) -> Result<After, String> {
    Ok(match conn.write_all(&head_and_half(ctx)).await {
        Ok(()) => After::HoldOpen,
        Err(_) => After::Close,
    })
}

/// `reset-body`: the head and part of the body, then a TCP reset.
pub async fn reset_body(conn: &mut Conn, ctx: &Ctx<'_>) -> Result<After, String> {
    if conn.write_all(&head_and_half(ctx)).await.is_err() {
        return Ok(After::Close);
    }
    // Let the partial response reach the client before the RST overtakes it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(After::Reset)
}
