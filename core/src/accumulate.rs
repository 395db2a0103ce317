//! Folds `chat.completion.chunk` objects into the final `chat.completion` a non-streamed call
//! would have returned: content, reasoning_content, tool_calls (merged by index, or by id when
//! the index is missing), finish_reason and usage.

use serde_json::{json, Map, Value};

/// Accumulates stream chunks.
///
/// ```
/// use serde_json::json;
/// let mut acc = claw_llm::Accumulator::default();
/// acc.push(&json!({"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}));
/// acc.push(&json!({"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}));
/// let done = acc.final_completion();
/// assert_eq!(done["choices"][0]["message"]["content"], "Hello");
/// assert_eq!(done["choices"][0]["finish_reason"], "stop");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Accumulator {
    id: Option<Value>,
    model: Option<Value>,
    created: Option<Value>,
    system_fingerprint: Option<Value>,
    usage: Option<Value>,
    choices: Vec<ChoiceAcc>,
    chunks: u64,
}

#[derive(Debug, Default, Clone)]
struct ChoiceAcc {
    index: u64,
    role: Option<String>,
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<ToolCallAcc>,
    finish_reason: Option<Value>,
}

#[derive(Debug, Default, Clone)]
struct ToolCallAcc {
    index: Option<u64>,
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
}

fn append(slot: &mut Option<String>, piece: Option<&str>) {
    if let Some(p) = piece {
        slot.get_or_insert_with(String::new).push_str(p);
    }
}

impl Accumulator {
    /// Folds one chunk in. Unknown fields are ignored; nothing here can fail.
    pub fn push(&mut self, chunk: &Value) {
        self.chunks += 1;
        let Some(obj) = chunk.as_object() else { return };
        for (slot, key) in [
            (&mut self.id, "id"),
            (&mut self.model, "model"),
            (&mut self.created, "created"),
            (&mut self.system_fingerprint, "system_fingerprint"),
        ] {
            if slot.is_none() {
                if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                    *slot = Some(v.clone());
                }
            }
        }
        if let Some(u) = obj.get("usage").filter(|v| !v.is_null()) {
            self.usage = Some(u.clone());
        }
        let Some(choices) = obj.get("choices").and_then(Value::as_array) else {
            return;
        };
        for (pos, choice) in choices.iter().enumerate() {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let acc = self.choice(index);
            if let Some(fr) = choice.get("finish_reason").filter(|v| !v.is_null()) {
                acc.finish_reason = Some(fr.clone());
            }
            let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) else {
                continue;
            };
            if let Some(role) = delta.get("role").and_then(Value::as_str) {
                acc.role = Some(role.to_string());
            }
            append(
                &mut acc.content,
                delta.get("content").and_then(Value::as_str),
            );
            append(
                &mut acc.reasoning,
                delta
                    .get("reasoning_content")
                    .or_else(|| delta.get("reasoning"))
                    .and_then(Value::as_str),
            );
            append(
                &mut acc.refusal,
                delta.get("refusal").and_then(Value::as_str),
            );
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for call in calls {
                    acc.merge_tool_call(call);
                }
            }
        }
    }

    fn choice(&mut self, index: u64) -> &mut ChoiceAcc {
        let pos = match self.choices.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.choices.push(ChoiceAcc {
                    index,
                    ..Default::default()
                });
                self.choices.len() - 1
            }
        };
        &mut self.choices[pos]
    }

    /// Chunks folded so far.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Whether any choice has received a `finish_reason`.
    pub fn has_finish_reason(&self) -> bool {
        self.choices.iter().any(|c| c.finish_reason.is_some())
    }

    /// The `usage` of the last chunk that had one.
    pub fn usage(&self) -> Option<&Value> {
        self.usage.as_ref()
    }

    /// The completion accumulated so far, shaped like a non-streamed `chat.completion`.
    pub fn final_completion(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), self.id.clone().unwrap_or(Value::Null));
        out.insert("object".into(), json!("chat.completion"));
        out.insert(
            "created".into(),
            self.created.clone().unwrap_or(Value::Null),
        );
        out.insert("model".into(), self.model.clone().unwrap_or(Value::Null));
        if let Some(fp) = &self.system_fingerprint {
            out.insert("system_fingerprint".into(), fp.clone());
        }
        let mut choices: Vec<&ChoiceAcc> = self.choices.iter().collect();
        choices.sort_by_key(|c| c.index);
        let choices: Vec<Value> = choices.into_iter().map(ChoiceAcc::to_json).collect();
        out.insert("choices".into(), Value::Array(choices));
        out.insert("usage".into(), self.usage.clone().unwrap_or(Value::Null));
        Value::Object(out)
    }
}

impl ChoiceAcc {
    fn merge_tool_call(&mut self, call: &Value) {
        let index = call.get("index").and_then(Value::as_u64);
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let pos = match (index, id) {
            (Some(i), _) => self.tool_calls.iter().position(|t| t.index == Some(i)),
            (None, Some(id)) => self
                .tool_calls
                .iter()
                .position(|t| t.id.as_deref() == Some(id)),
            // Neither index nor id: a continuation of the call in progress.
            (None, None) => self.tool_calls.len().checked_sub(1),
        };
        let pos = pos.unwrap_or_else(|| {
            self.tool_calls.push(ToolCallAcc {
                index,
                ..Default::default()
            });
            self.tool_calls.len() - 1
        });
        let t = &mut self.tool_calls[pos];
        if let Some(id) = id {
            t.id.get_or_insert_with(|| id.to_string());
        }
        if let Some(kind) = call.get("type").and_then(Value::as_str) {
            t.kind.get_or_insert_with(|| kind.to_string());
        }
        if let Some(f) = call.get("function") {
            if let Some(n) = f.get("name").and_then(Value::as_str) {
                t.name.push_str(n);
            }
            if let Some(a) = f.get("arguments").and_then(Value::as_str) {
                t.arguments.push_str(a);
            }
        }
    }

    fn to_json(&self) -> Value {
        let mut msg = Map::new();
        msg.insert(
            "role".into(),
            json!(self.role.as_deref().unwrap_or("assistant")),
        );
        msg.insert(
            "content".into(),
            self.content.clone().map_or(Value::Null, Value::String),
        );
        if let Some(r) = &self.reasoning {
            msg.insert("reasoning_content".into(), json!(r));
        }
        if let Some(r) = &self.refusal {
            msg.insert("refusal".into(), json!(r));
        }
        if !self.tool_calls.is_empty() {
            let calls: Vec<Value> = self
                .tool_calls
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id,
                        "type": t.kind.as_deref().unwrap_or("function"),
                        "function": {"name": t.name, "arguments": t.arguments},
                    })
                })
                .collect();
            msg.insert("tool_calls".into(), Value::Array(calls));
        }
        json!({
            "index": self.index,
            "message": Value::Object(msg),
            "finish_reason": self.finish_reason.clone().unwrap_or(Value::Null),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: Value, finish: Value) -> Value {
        json!({"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    #[test]
    fn stream_accumulates_content_and_reasoning() {
        let mut acc = Accumulator::default();
        acc.push(&chunk(
            json!({"role": "assistant", "reasoning_content": "think "}),
            Value::Null,
        ));
        acc.push(&chunk(json!({"reasoning_content": "more"}), Value::Null));
        acc.push(&chunk(json!({"content": "你好"}), Value::Null));
        acc.push(&chunk(json!({"content": "!"}), json!("stop")));
        acc.push(&json!({"choices": [], "usage": {"total_tokens": 9}}));
        let f = acc.final_completion();
        assert_eq!(f["choices"][0]["message"]["content"], "你好!");
        assert_eq!(
            f["choices"][0]["message"]["reasoning_content"],
            "think more"
        );
        assert_eq!(f["choices"][0]["finish_reason"], "stop");
        assert_eq!(f["usage"]["total_tokens"], 9);
        assert_eq!(f["id"], "c");
        assert!(acc.has_finish_reason());
    }

    #[test]
    fn stream_tool_calls_merge_by_index() {
        let mut acc = Accumulator::default();
        acc.push(&chunk(json!({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "get_", "arguments": ""}}]}), Value::Null));
        acc.push(&chunk(json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "other", "arguments": "{}"}}]}), Value::Null));
        acc.push(&chunk(json!({"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": "{\"city\":"}}]}), Value::Null));
        acc.push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            json!("tool_calls"),
        ));
        let f = acc.final_completion();
        let calls = f["choices"][0]["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["id"], "a");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(calls[1]["function"]["name"], "other");
        assert_eq!(f["choices"][0]["message"]["content"], Value::Null);
    }

    #[test]
    fn stream_tool_calls_merge_by_id_without_index() {
        let mut acc = Accumulator::default();
        acc.push(&chunk(
            json!({"tool_calls": [{"id": "a", "function": {"name": "f1", "arguments": "{\"x\""}}]}),
            Value::Null,
        ));
        acc.push(&chunk(
            json!({"tool_calls": [{"id": "b", "function": {"name": "f2", "arguments": "{}"}}]}),
            Value::Null,
        ));
        acc.push(&chunk(
            json!({"tool_calls": [{"id": "a", "function": {"arguments": ":1}"}}]}),
            Value::Null,
        ));
        acc.push(&chunk(
            json!({"tool_calls": [{"function": {"arguments": ""}}]}),
            json!("tool_calls"),
        ));
        let f = acc.final_completion();
        let calls = f["choices"][0]["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["function"]["arguments"], "{\"x\":1}");
        assert_eq!(calls[1]["id"], "b");
    }
}
