//! `GET …/models`: the fixed list of models the mock knows, in OpenAI's list shape.

use serde_json::{json, Value};

use crate::chat::now_secs;
use crate::http::Response;

/// The models `GET …/models` lists (documented in tests/MOCK_GATEWAY.md).
pub const MODELS: &[(&str, &str)] = &[
    ("qwen-plus", "dashscope"),
    ("qwen-max", "dashscope"),
    ("MiniMax-M2.5", "minimax"),
    ("moonshot-v1-8k", "moonshot"),
    ("text-embedding-v4", "dashscope"),
    ("text-embedding-3-small", "openai"),
];

/// The list answer.
pub fn list() -> Response {
    let created = now_secs();
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": created, "owned_by": owner}))
        .collect();
    Response::json(200, &json!({"object": "list", "data": data}))
}
