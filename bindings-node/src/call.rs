//! The path every native call takes: JSON strings in, core call on the runtime, body text (or
//! a stream) out. Parsing happens here, on the runtime, so a 10 MB request never blocks the
//! JS thread; option validation is the core's (`CallOptions::extract`).

use crate::cancel::CancelHandle;
use crate::client;
use crate::error::{self, to_js};
use crate::runtime::{self, Scope};
use crate::stream::NativeStream;
use claw_llm::{CallOptions, CancellationToken, Client};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;

/// Where the call's configuration comes from.
pub(crate) enum Target {
    /// An environment snapshot (free functions): values of `ENV_KEYS` joined by NUL.
    Env(String),
    /// A client made by `createClient`.
    Client(Client),
}

/// One call as JS sent it.
pub(crate) struct Request {
    model: String,
    payload_json: String,
    options_json: String,
    cancel: Option<CancellationToken>,
    arg_error: Option<String>,
    /// The JS environment that made the call: its log queue receives the call's lines.
    scope: Arc<Scope>,
}

impl Request {
    /// `payload_json` is the messages (chat) or the input (embeddings); `arg_error` is set when
    /// JS could not even encode the arguments (circular structure, BigInt, a non-string model).
    pub(crate) fn new(
        model: String,
        payload_json: String,
        options_json: String,
        cancel: Option<&CancelHandle>,
        arg_error: Option<String>,
    ) -> Self {
        // Called on the JS thread: the environment's scope, whose teardown cancels the call.
        // A signal's handle descends from the same scope (see `CancelHandle::new`); a call
        // without one waits on the environment's token itself (the core cancels only children
        // it makes, e.g. a stream's), so it needs no child of its own.
        let scope = runtime::scope();
        Request {
            model,
            payload_json,
            options_json,
            cancel: Some(cancel.map_or_else(|| scope.cancel.clone(), |c| c.token.clone())),
            arg_error,
            scope,
        }
    }
}

/// A call ready for the core.
struct Prepared {
    client: Client,
    payload: Value,
    params: Map<String, Value>,
    opts: CallOptions,
}

/// Decodes what `JSON.stringify` produced. It only fails on what JSON itself cannot carry to
/// a gateway: a lone UTF-16 surrogate (JS escapes it as `\ud800`), or nesting past serde's limit.
fn parse(what: &str, json: &str) -> claw_llm::Result<Value> {
    serde_json::from_str(json).map_err(|e| {
        let text = e.to_string();
        let why = if text.contains("surrogate") || text.contains("hex escape") {
            "a string holds a lone UTF-16 surrogate (half of an emoji, e.g. cut by .slice()), which is not valid Unicode"
        } else if text.contains("recursion limit") {
            "it is nested more than 127 levels deep"
        } else {
            "it is not valid JSON"
        };
        claw_llm::Error::config(format!("{what} cannot be sent: {why} ({text})"))
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Resolves the client, decodes the arguments and extracts the client's own options. A failure
/// here is logged like any failed call (the core logs the ones that happen after).
fn prepare(target: Target, req: &mut Request, what: &str) -> claw_llm::Result<Prepared> {
    let (client, level) = match target {
        Target::Client(c) => {
            let level = c.config().log_level();
            (Ok(c), level)
        }
        Target::Env(snapshot) => (
            client::for_env(&snapshot),
            client::snapshot_log_level(&snapshot),
        ),
    };
    let result = (|| {
        if let Some(message) = req.arg_error.take() {
            return Err(claw_llm::Error::config(message));
        }
        let client = client?;
        let payload = parse(what, &std::mem::take(&mut req.payload_json))?;
        let mut params = match parse("options", &std::mem::take(&mut req.options_json))? {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                return Err(claw_llm::Error::config(format!(
                    "options must be an object, got {}",
                    type_name(&other)
                )))
            }
        };
        let listener = listener_tag(params.shift_remove("onEvent"))?;
        let (mut opts, _stream) = CallOptions::extract(&mut params)?;
        opts.cancel = req.cancel.take();
        opts.on_event = listener.map(|tag| req.scope.events.listener(tag));
        Ok(Prepared {
            client,
            payload,
            params,
            opts,
        })
    })();
    if let Err(e) = &result {
        claw_llm::log_failure(level, &req.model, e);
    }
    result
}

/// The tag `index.js` put where a call's `onEvent` function was.
pub(crate) fn listener_tag(v: Option<Value>) -> claw_llm::Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| claw_llm::Error::config("onEvent must be a function")),
    }
}

fn body_text(body: bytes::Bytes) -> String {
    String::from_utf8(Vec::from(body))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The reply's text for `index.js`: the body, preceded (only when the call had fallbacks to
/// choose from) by `\u{2}<attempts detail JSON>\u{0}`, which `index.js` turns into the result's
/// non-enumerable `attemptsDetail`.
fn reply_text(raw: claw_llm::RawResponse) -> String {
    if raw.attempts_detail.is_empty() {
        return body_text(raw.body);
    }
    let detail = error::attempts_json(&raw.attempts_detail).to_string();
    let body = body_text(raw.body);
    let mut out = String::with_capacity(detail.len() + body.len() + 2);
    out.push('\u{2}');
    out.push_str(&detail);
    out.push('\u{0}');
    out.push_str(&body);
    out
}

/// A non-streamed chat completion; resolves to the body text.
pub(crate) fn chat(
    target: Target,
    mut req: Request,
) -> impl Future<Output = napi::Result<String>> + Send {
    let sink = req.scope.logs.sink();
    let fut = error::guard(async move {
        let p = prepare(target, &mut req, "messages").map_err(|e| to_js(&e))?;
        let raw = p
            .client
            .call_specific_model_raw(&req.model, p.payload, p.params, p.opts)
            .await
            .map_err(|e| to_js(&e))?;
        Ok(reply_text(raw))
    });
    claw_llm::with_log_sink(sink, fut)
}

/// A streamed chat completion; resolves once the head arrived.
pub(crate) fn stream(
    target: Target,
    mut req: Request,
) -> impl Future<Output = napi::Result<NativeStream>> + Send {
    let sink = req.scope.logs.sink();
    let fut = error::guard(async move {
        let p = prepare(target, &mut req, "messages").map_err(|e| to_js(&e))?;
        let s = p
            .client
            .stream(&req.model, p.payload, p.params, p.opts)
            .await
            .map_err(|e| to_js(&e))?;
        Ok(NativeStream::new(s))
    });
    claw_llm::with_log_sink(sink, fut)
}

/// Embeddings; resolves to the body text.
pub(crate) fn embed(
    target: Target,
    mut req: Request,
) -> impl Future<Output = napi::Result<String>> + Send {
    let sink = req.scope.logs.sink();
    let fut = error::guard(async move {
        let p = prepare(target, &mut req, "input").map_err(|e| to_js(&e))?;
        let raw = p
            .client
            .embed_raw(&req.model, p.payload, p.params, p.opts)
            .await
            .map_err(|e| to_js(&e))?;
        Ok(reply_text(raw))
    });
    claw_llm::with_log_sink(sink, fut)
}

/// `GET /models`; resolves to the body text (the payload is ignored).
pub(crate) fn list_models(
    target: Target,
    mut req: Request,
) -> impl Future<Output = napi::Result<String>> + Send {
    error::guard(async move {
        let p = prepare(target, &mut req, "payload").map_err(|e| to_js(&e))?;
        let raw = p
            .client
            .list_models_raw(p.opts)
            .await
            .map_err(|e| to_js(&e))?;
        Ok(reply_text(raw))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_what_cannot_be_sent() {
        let lone = parse("messages", r#"[{"content":"a\ud800b"}]"#)
            .err()
            .map(|e| e.to_string());
        assert!(lone.unwrap_or_default().contains("lone UTF-16 surrogate"));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deep = parse("messages", &deep).err().map(|e| e.to_string());
        assert!(deep.unwrap_or_default().contains("nested"));
        assert!(parse("messages", r#"[{"content":"\ud83d\ude00"}]"#).is_ok());
    }
}
#[cfg(test)]
mod future_size {
    use super::*;

    /// Every move of a call's future (into the runtime, into its task) copies all of it: the
    /// binding's wrappers must hold the core's future once, not once per layer.
    #[test]
    fn a_call_future_holds_the_core_future_once() {
        let cfg = claw_llm::ConfigBuilder::default()
            .base_url("http://127.0.0.1:9/v1")
            .api_key("k")
            .build_with(|_| None)
            .expect("config");
        let c = Client::new(cfg).expect("client");
        let core = std::mem::size_of_val(&c.call_specific_model_raw(
            "m",
            Value::Null,
            Map::new(),
            CallOptions::default(),
        ));
        let req = || Request::new("m".into(), "[]".into(), "{}".into(), None, None);
        let chat = error::guard(chat(Target::Client(c.clone()), req()));
        let embed = error::guard(embed(Target::Client(c.clone()), req()));
        for (name, size) in [
            ("chat", std::mem::size_of_val(&chat)),
            ("embed", std::mem::size_of_val(&embed)),
        ] {
            assert!(
                size < core + 2048,
                "{name}: {size} bytes around a core future of {core}"
            );
        }
    }
}
