//! Provider-like models: a DashScope-like embeddings model that rejects more inputs per request
//! than DashScope accepts, with DashScope's own error, and a MiniMax-like chat model that answers
//! with a leading `<think>…</think>` block (and a JSON answer in a code fence).

use std::time::Duration;

use serde_json::{json, Value};

use crate::chat::{self, Payload};
use crate::embeddings;
use crate::http::{Conn, Response};
use crate::mem0;
use crate::scenario::{send, After, Ctx, Spec};
use crate::stream;

/// DashScope's documented inputs per request: `text-embedding-v3`/`v4` 10, `v1`/`v2` 25.
pub fn dashscope_limit(model: &str) -> Option<u64> {
    match model.to_ascii_lowercase().as_str() {
        "text-embedding-v1" | "text-embedding-v2" => Some(25),
        "text-embedding-v3" | "text-embedding-v4" => Some(10),
        _ => None,
    }
}

/// DashScope's answer (compatible mode) to a request with too many inputs.
fn batch_too_large(limit: u64) -> Response {
    Response::json(
        400,
        &json!({
            "error": {
                "code": "InvalidParameter",
                "param": null,
                "message": format!("<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should not be larger than {limit}.: input.contents"),
                "type": "InvalidParameter"
            },
            "id": "mock-dashscope",
            "request_id": "mock-dashscope"
        }),
    )
}

/// `dashscope-embed:limit=N,ms=M,key=K,dims=D`: the embeddings answer for at most N inputs
/// (default 10), DashScope's 400 for more; waits M ms first; counts requests in flight under K
/// (`/__mock/stats` `in_flight_peak`); `dims` forces the vector size whatever was asked.
pub async fn dashscope_embed(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    let limit = spec.u64_or("limit", 10)?.max(1);
    let ms = spec.u64_or("ms", 0)?;
    let dims = match spec.get("dims") {
        Some(_) => Some(spec.u64_or("dims", 0)?.clamp(1, 65_536) as usize),
        None => None,
    };
    let _in_flight = spec.get("key").map(|k| ctx.state.enter(k));
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let count = match ctx.body.as_ref().and_then(|b| b.get("input")) {
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.len() as u64,
        _ => 1,
    };
    let resp = if count > limit {
        batch_too_large(limit)
    } else {
        embeddings::respond_with(ctx, dims)?
    };
    Ok(send(conn, ctx, &resp).await)
}

/// The reasoning the MiniMax-like model writes before every answer.
pub const REASONING: &str = "The user wants a short answer. Let me think it through first.";

/// Whether the request asks for a JSON answer (`response_format` `json_object` / `json_schema`).
fn wants_json(ctx: &Ctx<'_>) -> bool {
    let kind = ctx
        .body
        .as_ref()
        .and_then(|b| b.get("response_format"))
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str);
    matches!(kind, Some("json_object" | "json_schema"))
}

/// mem0's LLM reranker asks for one relevance score per document (2.x in a system prompt,
/// 1.x in one user prompt).
const SCORING_MARKER: &str = "You are a relevance scoring assistant";

/// The relevance score the reranker asks for: the share of the document's words that are in
/// the query (`Query: …\n\nDocument: …`), with two decimals.
fn relevance_score(text: &str) -> String {
    let after_query = text.rsplit_once("Query:").map_or(text, |(_, rest)| rest);
    let (query, rest) = after_query
        .split_once("Document:")
        .unwrap_or((after_query, ""));
    let document = rest.split("\n\n").next().unwrap_or("");
    let query: std::collections::HashSet<String> =
        embeddings::tokenize(query).into_iter().collect();
    let words = embeddings::tokenize(document);
    let hits = words.iter().filter(|w| query.contains(*w)).count();
    format!("{:.2}", hits as f64 / words.len().max(1) as f64)
}

/// The MiniMax-like content: `<think>\n…\n</think>\n\n` then the answer. A JSON answer (mem0's
/// prompts, or `response_format` asking for JSON) is wrapped in a ```json fence unless `fence=0`;
/// mem0's reranker prompt gets a relevance score.
pub fn minimax_content(ctx: &Ctx<'_>, spec: &Spec) -> Result<String, String> {
    let fence = spec.bool_or("fence", true)?;
    let messages = ctx.messages();
    let scoring = messages
        .iter()
        .any(|m| chat::content_text(m).contains(SCORING_MARKER));
    if scoring {
        let user = messages.last().map(chat::content_text).unwrap_or_default();
        return Ok(format!(
            "<think>\n{REASONING}\n</think>\n\n{}",
            relevance_score(&user)
        ));
    }
    let json_answer = match mem0::answer(messages, false) {
        Some(answer) => Some(answer),
        None if wants_json(ctx) => Some(json!({"answer": chat::echo_content(ctx)}).to_string()),
        None => None,
    };
    let answer = match json_answer {
        Some(j) if fence => format!("```json\n{j}\n```"),
        Some(j) => j,
        None => chat::echo_content(ctx),
    };
    Ok(format!("<think>\n{REASONING}\n</think>\n\n{answer}"))
}

/// `minimax:chunk=N,fence=0|1`: a chat completion whose content starts with a `<think>` block;
/// streamed (`"stream": true`) as content deltas of N characters (default 3; 1 = one character
/// per chunk), so the tags arrive split.
pub async fn minimax(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    if !matches!(ctx.body, Some(Value::Object(_))) {
        return Err("request body is not a JSON object".into());
    }
    let chunk = spec.u64_or("chunk", 3)?.max(1) as usize;
    let content = minimax_content(ctx, spec)?;
    let payload = if ctx.wants_stream() {
        let chars: Vec<char> = content.chars().collect();
        let tokens: Vec<String> = chars.chunks(chunk).map(|c| c.iter().collect()).collect();
        Payload::Stream(stream::normal_events(ctx, &tokens, "\n"))
    } else {
        Payload::Body(Response::new(
            200,
            "application/json",
            chat::completion_body(ctx, &content),
        ))
    };
    Ok(chat::deliver(conn, ctx, payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashscope_limits_by_model() {
        assert_eq!(dashscope_limit("text-embedding-v4"), Some(10));
        assert_eq!(dashscope_limit("text-embedding-v2"), Some(25));
        assert_eq!(dashscope_limit("bge-m3"), None);
    }

    #[test]
    fn reranker_score_is_the_share_of_document_words_in_the_query() {
        assert_eq!(
            relevance_score("Query: green tea\n\nDocument: drinks green tea"),
            "0.67"
        );
        assert_eq!(
            relevance_score("Query: cats\n\nDocument: likes tea"),
            "0.00"
        );
        let v1 = "Given a query and a document\n\nQuery: \"green tea\"\nDocument: \"drinks green tea\"\n\nProvide only a score.";
        assert_eq!(relevance_score(v1), "0.67");
    }

    #[test]
    fn dashscope_error_carries_its_words() {
        let body = String::from_utf8(batch_too_large(10).body).unwrap();
        assert!(body.contains("batch size is invalid, it should not be larger than 10"));
    }
}
