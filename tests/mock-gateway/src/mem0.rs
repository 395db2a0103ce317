//! Deterministic answers to mem0's LLM calls (mem0ai, `mem0/configs/prompts.py`).
//!
//! mem0 has used two pipelines:
//! * 0.1.x / 1.x — two calls. Fact extraction: system = `FACT_RETRIEVAL_PROMPT`,
//!   `USER_MEMORY_EXTRACTION_PROMPT` ("…Personal Information Organizer…") or
//!   `AGENT_MEMORY_EXTRACTION_PROMPT` ("…Assistant Information Organizer…"), user =
//!   `"Input:\n" + "user: …\nassistant: …\n"`; the reply is `{"facts": [...]}`. Then the memory
//!   update: one user message built by `get_update_memory_messages` ("You are a smart memory
//!   manager…", old memories and new facts as Python reprs inside triple backticks); the reply
//!   is `{"memory": [{"id", "text", "event"}]}`.
//! * 2.x — one call. System = `ADDITIVE_EXTRACTION_PROMPT` ("You are a Memory Extractor…"),
//!   user = `## Summary`, `## Existing Memories` (JSON), `## New Messages` (`"user: …\n"`),
//!   …; the reply is `{"memory": [{"id", "text", "attributed_to"}]}` (ADD only).
//!
//! Facts are the sentences of the user's messages.

use serde_json::{json, Map, Value};

use crate::chat::content_text;

/// Substrings that identify mem0's prompts.
const FACTS_USER_MARKER: &str =
    "Personal Information Organizer, specialized in accurately storing facts";
const FACTS_AGENT_MARKER: &str =
    "Assistant Information Organizer, specialized in accurately storing facts";
const UPDATE_MARKERS: [&str; 2] = [
    "You are a smart memory manager which controls the memory of a system",
    "The new retrieved facts are mentioned in the triple backticks",
];
const ADDITIVE_MARKER: &str = "You are a Memory Extractor";
const OLD_MEMORY_ANCHOR: &str = "Below is the current content of my memory";
const NEW_FACTS_ANCHOR: &str = "The new retrieved facts are mentioned in the triple backticks";

/// Which mem0 call a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Fact extraction (`{"facts": [...]}`); `about_assistant` for the agent prompt.
    Facts { about_assistant: bool },
    /// Memory update (`{"memory": [{id, text, event}]}`).
    Update,
    /// 2.x additive extraction (`{"memory": [{id, text, attributed_to}]}`).
    Additive,
}

/// Texts of the system and user messages.
fn prompt_texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "user")
            )
        })
        .map(content_text)
        .collect()
}

/// Recognizes mem0's prompts in a chat request.
pub fn detect(messages: &[Value]) -> Option<Kind> {
    let texts = prompt_texts(messages);
    let any = |marker: &str| texts.iter().any(|t| t.contains(marker));
    if UPDATE_MARKERS.iter().any(|m| any(m)) {
        Some(Kind::Update)
    } else if any(ADDITIVE_MARKER) {
        Some(Kind::Additive)
    } else if any(FACTS_AGENT_MARKER) {
        Some(Kind::Facts {
            about_assistant: true,
        })
    } else if any(FACTS_USER_MARKER) {
        Some(Kind::Facts {
            about_assistant: false,
        })
    } else {
        None
    }
}

/// The JSON content mem0 expects, or `None` when the request is not a mem0 call. With
/// `forced` (the explicit `mem0` scenario) an unrecognized request is treated as fact
/// extraction (or additive extraction when it has a `## New Messages` section).
pub fn answer(messages: &[Value], forced: bool) -> Option<String> {
    let kind = match detect(messages) {
        Some(kind) => kind,
        None if !forced => return None,
        None if prompt_texts(messages)
            .iter()
            .any(|t| t.contains("## New Messages")) =>
        {
            Kind::Additive
        }
        None => Kind::Facts {
            about_assistant: false,
        },
    };
    let texts = prompt_texts(messages);
    let value = match kind {
        Kind::Facts { about_assistant } => {
            let input = messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .map(content_text)
                .unwrap_or_default();
            json!({"facts": extract_facts(&input, about_assistant)})
        }
        Kind::Update => {
            let prompt = texts
                .iter()
                .find(|t| UPDATE_MARKERS.iter().any(|m| t.contains(m)))
                .cloned()
                .unwrap_or_default();
            update_memory(&prompt)
        }
        Kind::Additive => {
            let prompt = texts
                .iter()
                .rev()
                .find(|t| t.contains("## New Messages"))
                .cloned()
                .unwrap_or_default();
            additive(&prompt)
        }
    };
    Some(value.to_string())
}

/// Facts of a fact-extraction input: the sentences of the user's lines (or the assistant's).
pub fn extract_facts(input: &str, about_assistant: bool) -> Vec<String> {
    let input = input.trim_start();
    let input = input.strip_prefix("Input:").unwrap_or(input);
    let turns = conversation(input);
    let wanted = if about_assistant { "assistant" } else { "user" };
    let mut chosen: Vec<&str> = turns
        .iter()
        .filter(|(role, _)| role == wanted)
        .map(|(_, text)| text.as_str())
        .collect();
    if chosen.is_empty() && turns.iter().all(|(role, _)| role.is_empty()) {
        // Not a "role: text" transcript: the whole input is what the user said.
        chosen = turns.iter().map(|(_, t)| t.as_str()).collect();
    }
    let mut facts: Vec<String> = Vec::new();
    for text in chosen {
        for s in sentences(text) {
            if !facts.contains(&s) {
                facts.push(s);
            }
        }
    }
    facts
}

/// Splits mem0's `"role: text\n"` transcript into turns (continuation lines join the turn
/// above; lines before any role get the empty role).
fn conversation(text: &str) -> Vec<(String, String)> {
    let mut turns: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let role = ["user", "assistant", "system"].into_iter().find(|r| {
            line.strip_prefix(r)
                .is_some_and(|rest| rest.starts_with(':'))
        });
        match role {
            Some(role) => {
                let content = line[role.len() + 1..].trim().to_string();
                turns.push((role.to_string(), content));
            }
            None => match turns.last_mut() {
                Some((_, text)) => {
                    text.push('\n');
                    text.push_str(line);
                }
                None => turns.push((String::new(), line.to_string())),
            },
        }
    }
    turns
}

/// Sentences of a text: split after `. ! ?` (before whitespace or the end), after `。！？`,
/// and at line breaks; trimmed, a final `.`/`。` removed, empty ones dropped.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut flush = |current: &mut String| {
        let s = current.trim();
        let s = s.strip_suffix(['.', '。']).unwrap_or(s).trim();
        if !s.is_empty() {
            out.push(s.to_string());
        }
        current.clear();
    };
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' || c == '\r' {
            flush(&mut current);
            continue;
        }
        current.push(c);
        let ends = match c {
            '。' | '！' | '？' => true,
            '.' | '!' | '?' => chars.get(i + 1).map_or(true, |n| n.is_whitespace()),
            _ => false,
        };
        if ends {
            flush(&mut current);
        }
    }
    flush(&mut current);
    out
}

/// Normal form for "same memory" comparisons.
fn same_key(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The text inside the first triple-backtick block after `anchor`.
fn block_after<'a>(text: &'a str, anchor: &str) -> Option<&'a str> {
    let after = &text[text.find(anchor)? + anchor.len()..];
    let open = after.find("```")? + 3;
    let rest = &after[open..];
    let close = rest.find("```")?;
    Some(rest[..close].trim())
}

/// Answers the memory-update prompt: NONE for every old memory, ADD (with a new id) for
/// every new fact that is not already one of them.
pub fn update_memory(prompt: &str) -> Value {
    let old: Vec<(String, String)> = block_after(prompt, OLD_MEMORY_ANCHOR)
        .and_then(parse_literal)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            let id = match m.get("id")? {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let text = m.get("text").and_then(Value::as_str)?.to_string();
            Some((id, text))
        })
        .collect();
    let facts: Vec<String> = block_after(prompt, NEW_FACTS_ANCHOR)
        .and_then(parse_literal)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|f| match f {
            Value::String(s) => Some(s.clone()),
            other => other
                .get("fact")
                .or_else(|| other.get("text"))
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect();

    let mut memory: Vec<Value> = old
        .iter()
        .map(|(id, text)| json!({"id": id, "text": text, "event": "NONE"}))
        .collect();
    let mut known: Vec<String> = old.iter().map(|(_, t)| same_key(t)).collect();
    let mut next_id = old
        .iter()
        .filter_map(|(id, _)| id.parse::<u64>().ok().map(|n| n + 1))
        .max()
        .unwrap_or(0)
        .max(old.len() as u64);
    for fact in facts {
        let key = same_key(&fact);
        if key.is_empty() || known.contains(&key) {
            continue;
        }
        known.push(key);
        memory.push(json!({"id": next_id.to_string(), "text": fact, "event": "ADD"}));
        next_id += 1;
    }
    json!({ "memory": memory })
}

/// The body of a `## Name` section of the 2.x user prompt.
fn section<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    let header = format!("## {name}\n");
    let start = prompt.find(&header)? + header.len();
    let rest = &prompt[start..];
    // Sections are joined by a blank line; New Messages is followed by Observation Date.
    let end = rest
        .find("\n\n## Observation Date")
        .filter(|_| name == "New Messages")
        .or_else(|| rest.find("\n\n## "))
        .or_else(|| rest.find("\n\n# Output"))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Answers the 2.x additive extraction: one ADD per new user sentence.
pub fn additive(prompt: &str) -> Value {
    let mut known: Vec<String> = ["Existing Memories", "Recently Extracted Memories"]
        .iter()
        .filter_map(|name| section(prompt, name))
        .filter_map(|s| serde_json::from_str::<Value>(s.trim()).ok())
        .filter_map(|v| v.as_array().cloned())
        .flatten()
        .filter_map(|m| m.get("text").and_then(Value::as_str).map(same_key))
        .collect();

    let new_messages = section(prompt, "New Messages").unwrap_or("");
    // Usually mem0's "role: text" transcript; a JSON message list is accepted too.
    let transcript = match serde_json::from_str::<Value>(new_messages.trim()) {
        Ok(Value::Array(list)) => list
            .iter()
            .map(|m| {
                format!(
                    "{}: {}",
                    m.get("role").and_then(Value::as_str).unwrap_or("user"),
                    content_text(m)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => new_messages.to_string(),
    };
    let (mut facts, mut who) = (extract_facts(&transcript, false), "user");
    if facts.is_empty() {
        facts = extract_facts(&transcript, true);
        who = "assistant";
    }

    let mut memory = Vec::new();
    for fact in facts {
        let key = same_key(&fact);
        if known.contains(&key) {
            continue;
        }
        known.push(key);
        let mut item = Map::new();
        item.insert("id".into(), json!(memory.len().to_string()));
        item.insert("text".into(), json!(fact));
        item.insert("attributed_to".into(), json!(who));
        memory.push(Value::Object(item));
    }
    json!({ "memory": memory })
}

/// Parses JSON, or a Python literal as `repr()` prints it (lists, dicts, quoted strings,
/// numbers, None/True/False).
pub fn parse_literal(text: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut p = PyParser {
        chars,
        pos: 0,
        depth: 0,
    };
    let value = p.value()?;
    p.skip_ws();
    (p.pos == p.chars.len()).then_some(value)
}

/// Deepest nesting `parse_literal` follows (the text comes from the network).
const MAX_DEPTH: usize = 64;

struct PyParser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl PyParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_ws();
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = match self.peek()? {
            '[' | '(' => self.list(),
            '{' => self.dict(),
            '\'' | '"' => self.string().map(Value::String),
            _ => self.atom(),
        };
        self.depth -= 1;
        value
    }

    fn list(&mut self) -> Option<Value> {
        let close = if self.peek()? == '[' { ']' } else { ')' };
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek()? == close {
                self.pos += 1;
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.peek()? {
                ',' => self.pos += 1,
                c if c == close => {}
                _ => return None,
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        self.pos += 1;
        let mut map = Map::new();
        loop {
            self.skip_ws();
            if self.peek()? == '}' {
                self.pos += 1;
                return Some(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.skip_ws();
            if self.peek()? != ':' {
                return None;
            }
            self.pos += 1;
            let value = self.value()?;
            map.insert(key, value);
            self.skip_ws();
            match self.peek()? {
                ',' => self.pos += 1,
                '}' => {}
                _ => return None,
            }
        }
    }

    fn hex(&mut self, digits: usize) -> Option<char> {
        let s: String = self
            .chars
            .get(self.pos..self.pos + digits)?
            .iter()
            .collect();
        self.pos += digits;
        char::from_u32(u32::from_str_radix(&s, 16).ok()?)
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                c if c == quote => return Some(out),
                '\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        'x' => out.push(self.hex(2)?),
                        'u' => out.push(self.hex(4)?),
                        'U' => out.push(self.hex(8)?),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn atom(&mut self) -> Option<Value> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
        {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "" => None,
            "None" => Some(Value::Null),
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            w => Some(serde_json::from_str(w).unwrap_or(Value::String(w.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening of mem0's `USER_MEMORY_EXTRACTION_PROMPT` (mem0ai 1.x).
    const USER_PROMPT: &str = "You are a Personal Information Organizer, specialized in accurately storing facts, user memories, and preferences. \nYour primary role is to extract relevant pieces of information from conversations";

    /// What mem0 1.x `get_update_memory_messages` produces (abridged template text).
    fn update_prompt(old: &str, facts: &str) -> String {
        let current = if old.is_empty() {
            "\n    Current memory is empty.\n\n    ".to_string()
        } else {
            format!("\n    Below is the current content of my memory which I have collected till now. You have to update it in the following format only:\n\n    ```\n    {old}\n    ```\n\n    ")
        };
        format!("You are a smart memory manager which controls the memory of a system.\nYou can perform four operations: (1) add into the memory, (2) update the memory, (3) delete from the memory, and (4) no change.\n- **Example**:\n    - Old Memory:\n        [\n            {{\n                \"id\" : \"0\",\n                \"text\" : \"User is a software engineer\"\n            }}\n        ]\n\n    {current}\n\n    The new retrieved facts are mentioned in the triple backticks. You have to analyze the new retrieved facts and determine whether these facts should be added, updated, or deleted in the memory.\n\n    ```\n    {facts}\n    ```\n\n    You must return your response in the following JSON structure only:\n")
    }

    #[test]
    fn detects_fact_extraction_update_and_additive_prompts() {
        let facts = [
            json!({"role": "system", "content": USER_PROMPT}),
            json!({"role": "user", "content": "Input:\nuser: I like tea.\n"}),
        ];
        assert_eq!(
            detect(&facts),
            Some(Kind::Facts {
                about_assistant: false
            })
        );
        let agent = [
            json!({"role": "system", "content": "You are an Assistant Information Organizer, specialized in accurately storing facts, preferences"}),
            json!({"role": "user", "content": "Input:\nassistant: I am Alex.\n"}),
        ];
        assert_eq!(
            detect(&agent),
            Some(Kind::Facts {
                about_assistant: true
            })
        );
        let update = [json!({"role": "user", "content": update_prompt("", "['Likes tea']")})];
        assert_eq!(detect(&update), Some(Kind::Update));
        let additive_msgs = [
            json!({"role": "system", "content": "\n\n# ROLE\n\nYou are a Memory Extractor — a precise, evidence-bound processor"}),
            json!({"role": "user", "content": "## Summary\n\n\n## New Messages\nuser: hi\n\n\n## Observation Date\n2025-01-01"}),
        ];
        assert_eq!(detect(&additive_msgs), Some(Kind::Additive));
        let plain = [json!({"role": "user", "content": "What facts do you know?"})];
        assert_eq!(detect(&plain), None);
        assert_eq!(answer(&plain, false), None);
    }

    #[test]
    fn facts_are_the_user_sentences_without_input_framing() {
        let messages = [
            json!({"role": "system", "content": USER_PROMPT}),
            json!({"role": "user", "content": "Input:\nuser: My name is Ana. I love green tea!\nassistant: Nice to meet you.\nuser: 我住在上海。\n"}),
        ];
        let content = answer(&messages, false).unwrap();
        let value: Value = serde_json::from_str(&content).unwrap();
        assert_eq!(
            value,
            json!({"facts": ["My name is Ana", "I love green tea!", "我住在上海"]})
        );
    }

    #[test]
    fn forced_mem0_on_plain_chat_extracts_facts_from_the_user_text() {
        let messages = [json!({"role": "user", "content": "I live in Paris. I work at a bakery."})];
        let value: Value = serde_json::from_str(&answer(&messages, true).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({"facts": ["I live in Paris", "I work at a bakery"]})
        );
    }

    #[test]
    fn update_adds_new_facts_and_keeps_identical_ones() {
        let prompt = update_prompt(
            "[{'id': '0', 'text': 'Likes tea'}, {'id': '1', 'text': \"User's dog is Rex\"}]",
            "['Likes tea', 'Lives in Paris', \"User's cat is Tom\"]",
        );
        let value = update_memory(&prompt);
        assert_eq!(
            value,
            json!({"memory": [
                {"id": "0", "text": "Likes tea", "event": "NONE"},
                {"id": "1", "text": "User's dog is Rex", "event": "NONE"},
                {"id": "2", "text": "Lives in Paris", "event": "ADD"},
                {"id": "3", "text": "User's cat is Tom", "event": "ADD"}
            ]})
        );
    }

    #[test]
    fn update_with_empty_memory_adds_every_fact() {
        let prompt = update_prompt("", "['Name is John', 'Is a software engineer']");
        let messages = [json!({"role": "user", "content": prompt})];
        let value: Value = serde_json::from_str(&answer(&messages, false).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({"memory": [
                {"id": "0", "text": "Name is John", "event": "ADD"},
                {"id": "1", "text": "Is a software engineer", "event": "ADD"}
            ]})
        );
    }

    #[test]
    fn additive_extraction_skips_existing_memories() {
        let user = "## Summary\n\n\n## Last k Messages\n\n\n## Recently Extracted Memories\n[]\n\n## Existing Memories\n[{\"id\": \"0\", \"text\": \"I like tea\"}]\n\n## New Messages\nuser: I like tea. I have a dog named Max.\nassistant: Cool!\n\n\n## Observation Date\n2025-03-10\n\n## Current Date\n2025-03-10\n\n# Output:";
        let messages = [
            json!({"role": "system", "content": "# ROLE\n\nYou are a Memory Extractor — a precise processor"}),
            json!({"role": "user", "content": user}),
        ];
        let value: Value = serde_json::from_str(&answer(&messages, false).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({"memory": [
                {"id": "0", "text": "I have a dog named Max", "attributed_to": "user"}
            ]})
        );
    }

    #[test]
    fn sentences_split_on_terminators_but_not_decimals() {
        assert_eq!(
            sentences("Pi is 3.14. Really?  Yes!\nNew line"),
            vec!["Pi is 3.14", "Really?", "Yes!", "New line"]
        );
        assert_eq!(sentences("你好。世界！"), vec!["你好", "世界！"]);
    }

    #[test]
    fn python_literals_parse_like_json() {
        assert_eq!(
            parse_literal("[{'id': '0', 'text': 'it\\'s', 'n': 1, 'x': None}]").unwrap(),
            json!([{"id": "0", "text": "it's", "n": 1, "x": null}])
        );
        assert_eq!(parse_literal("[\"a\", 'b']").unwrap(), json!(["a", "b"]));
        assert!(parse_literal("[unclosed").is_none());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_literal(&deep).is_none());
    }
}
