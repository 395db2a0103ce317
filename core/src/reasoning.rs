//! The reasoning switch: some models (MiniMax-M2.x, Qwen3 and DeepSeek-R1 behind some gateways)
//! put their reasoning in `content` as a leading `<think>…</think>` block, others in
//! `reasoning_content`. With [`Reasoning::Split`] the block moves to `reasoning_content` in
//! returned completions, in every stream delta (the tags may arrive split across chunks, down to
//! one character per chunk) and so in the final completion. [`Reasoning::Raw`], the default,
//! changes nothing.
//!
//! Only a block at the very start of `content` counts (leading whitespace allowed); whitespace
//! right after `</think>` is dropped, so the answer starts with its first visible character. A
//! block that is never closed stays reasoning. A `content` without such a block is untouched.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// What to do with a leading `<think>…</think>` block in `content` (`LLM_REASONING`).
///
/// ```
/// use claw_llm::Reasoning;
/// assert_eq!(Reasoning::parse("split").unwrap(), Reasoning::Split);
/// assert_eq!(Reasoning::default(), Reasoning::Raw);
/// assert!(Reasoning::parse("hide").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reasoning {
    /// The gateway's answer as it is (the default).
    #[default]
    Raw,
    /// A leading `<think>…</think>` block moves from `content` to `reasoning_content`.
    Split,
}

impl Reasoning {
    /// Parses `raw` or `split` (case-insensitive, trimmed); anything else is a config error.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "raw" => Ok(Reasoning::Raw),
            "split" => Ok(Reasoning::Split),
            _ => Err(Error::config(format!(
                "reasoning must be \"raw\" or \"split\", got {s:?}"
            ))),
        }
    }
}

/// What one piece of `content` turned into.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Text that belongs to `reasoning_content`.
    pub reasoning: String,
    /// Text that stays `content`.
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace and maybe part of `<think>` seen yet.
    Start,
    /// Inside the block.
    Think,
    /// Just after `</think>`: whitespace is dropped.
    After,
    /// Everything from here on is content.
    Done,
}

/// Splits one choice's `content`, fed piece by piece as a stream delivers it. It holds back only
/// what could still be the start of a tag (or leading whitespace before one).
///
/// ```
/// use claw_llm::reasoning::ThinkSplitter;
/// let mut s = ThinkSplitter::default();
/// let mut out = s.push("<thi");
/// assert_eq!(out.content, "");
/// out = s.push("nk>plan</th");
/// assert_eq!(out.reasoning, "plan");
/// out = s.push("ink>\n\nAnswer");
/// assert_eq!(out.content, "Answer");
/// assert!(s.found_block());
/// ```
#[derive(Debug, Clone)]
pub struct ThinkSplitter {
    state: State,
    held: String,
    found: bool,
}

impl Default for ThinkSplitter {
    fn default() -> Self {
        ThinkSplitter {
            state: State::Start,
            held: String::new(),
            found: false,
        }
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of `tag`.
fn partial_tag_suffix(text: &str, tag: &str) -> usize {
    let max = text.len().min(tag.len() - 1);
    (1..=max)
        .rev()
        .find(|&k| text.as_bytes()[text.len() - k..] == tag.as_bytes()[..k])
        .unwrap_or(0)
}

impl ThinkSplitter {
    /// Whether a `<think>` block was opened.
    pub fn found_block(&self) -> bool {
        self.found
    }

    /// Whether text is held back, waiting for more.
    pub fn holds_text(&self) -> bool {
        !self.held.is_empty()
    }

    /// Feeds the next piece of `content`; returns what can be released now.
    pub fn push(&mut self, text: &str) -> Piece {
        let mut out = Piece::default();
        if self.state == State::Done {
            out.content.push_str(text);
            return out;
        }
        self.held.push_str(text);
        loop {
            match self.state {
                State::Start => {
                    let trimmed = self.held.trim_start();
                    if let Some(rest) = trimmed.strip_prefix(OPEN) {
                        self.held = rest.to_string();
                        self.state = State::Think;
                        self.found = true;
                    } else if OPEN.starts_with(trimmed) {
                        return out; // whitespace, or part of the opening tag so far
                    } else {
                        out.content.push_str(&std::mem::take(&mut self.held));
                        self.state = State::Done;
                        return out;
                    }
                }
                State::Think => {
                    if let Some(i) = self.held.find(CLOSE) {
                        out.reasoning.push_str(&self.held[..i]);
                        self.held.drain(..i + CLOSE.len());
                        self.state = State::After;
                    } else {
                        let keep = partial_tag_suffix(&self.held, CLOSE);
                        let cut = self.held.len() - keep;
                        out.reasoning.push_str(&self.held[..cut]);
                        self.held.drain(..cut);
                        return out;
                    }
                }
                State::After => {
                    let trimmed = self.held.trim_start();
                    if !trimmed.is_empty() {
                        out.content.push_str(trimmed);
                        self.state = State::Done;
                    }
                    self.held.clear();
                    return out;
                }
                State::Done => {
                    out.content.push_str(&std::mem::take(&mut self.held));
                    return out;
                }
            }
        }
    }

    /// The content ended: releases what was held (an unclosed block stays reasoning).
    pub fn finish(&mut self) -> Piece {
        let held = std::mem::take(&mut self.held);
        let out = match self.state {
            State::Start => Piece {
                content: held,
                ..Piece::default()
            },
            State::Think => Piece {
                reasoning: held,
                ..Piece::default()
            },
            State::After | State::Done => Piece::default(),
        };
        self.state = State::Done;
        out
    }
}

/// Splits a whole `content` string; `None` when it has no leading `<think>` block.
///
/// ```
/// let p = claw_llm::reasoning::split_text("<think>hmm</think>\n\n{\"a\":1}").unwrap();
/// assert_eq!((p.reasoning.as_str(), p.content.as_str()), ("hmm", "{\"a\":1}"));
/// assert!(claw_llm::reasoning::split_text("plain <think>x</think>").is_none());
/// ```
pub fn split_text(content: &str) -> Option<Piece> {
    let mut s = ThinkSplitter::default();
    let mut out = s.push(content);
    let rest = s.finish();
    if !s.found_block() {
        return None;
    }
    out.reasoning.push_str(&rest.reasoning);
    out.content.push_str(&rest.content);
    Some(out)
}

/// Appends `reasoning` to an object's `reasoning_content` (a string, or absent/null).
fn add_reasoning(obj: &mut Map<String, Value>, reasoning: &str) {
    match obj.get_mut("reasoning_content") {
        Some(Value::String(existing)) => existing.push_str(reasoning),
        _ => {
            obj.insert(
                "reasoning_content".into(),
                Value::String(reasoning.to_string()),
            );
        }
    }
}

/// Splits every `choices[].message.content` of a chat completion; returns whether anything
/// changed.
pub fn split_completion(completion: &mut Value) -> bool {
    let mut changed = false;
    let Some(choices) = completion.get_mut("choices").and_then(Value::as_array_mut) else {
        return false;
    };
    for choice in choices {
        let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) else {
            continue;
        };
        let Some(piece) = message
            .get("content")
            .and_then(Value::as_str)
            .and_then(split_text)
        else {
            continue;
        };
        message.insert("content".into(), Value::String(piece.content));
        add_reasoning(message, &piece.reasoning);
        changed = true;
    }
    changed
}

/// Whether a body may hold a `<think>` block at all, a cheap test before parsing it. It looks
/// for `think` only, because Go gateways (OneAPI) escape `<` and `>` as `\u003c` and `\u003e`.
pub(crate) fn may_hold_block(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"think").is_some()
}

/// The splitters of one stream, one per choice index.
#[derive(Debug, Default)]
pub struct StreamSplitter {
    choices: Vec<(u64, ThinkSplitter)>,
}

impl StreamSplitter {
    fn splitter(&mut self, index: u64) -> &mut ThinkSplitter {
        let pos = match self.choices.iter().position(|(i, _)| *i == index) {
            Some(p) => p,
            None => {
                self.choices.push((index, ThinkSplitter::default()));
                self.choices.len() - 1
            }
        };
        &mut self.choices[pos].1
    }

    /// Rewrites one `chat.completion.chunk` in place; returns whether it changed. A choice with a
    /// `finish_reason` releases what its splitter held.
    pub fn chunk(&mut self, chunk: &mut Value) -> bool {
        let mut changed = false;
        let Some(choices) = chunk.get_mut("choices").and_then(Value::as_array_mut) else {
            return false;
        };
        for (pos, choice) in choices.iter_mut().enumerate() {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
                continue;
            };
            let splitter = self.splitter(index);
            let text = delta.get("content").and_then(Value::as_str);
            if text.is_none() && !finished {
                continue;
            }
            let original = text.map(str::to_string);
            let mut piece = match &original {
                Some(t) => splitter.push(t),
                None => Piece::default(),
            };
            if finished {
                let rest = splitter.finish();
                piece.reasoning.push_str(&rest.reasoning);
                piece.content.push_str(&rest.content);
            }
            if piece.reasoning.is_empty() && original.as_deref() == Some(piece.content.as_str()) {
                continue;
            }
            if piece.reasoning.is_empty() && original.is_none() && piece.content.is_empty() {
                continue;
            }
            if !piece.reasoning.is_empty() {
                add_reasoning(delta, &piece.reasoning);
            }
            let content = if piece.content.is_empty() {
                Value::Null
            } else {
                Value::String(piece.content)
            };
            delta.insert("content".into(), content);
            changed = true;
        }
        changed
    }

    /// A chunk with whatever is still held, for a stream that ended without a finish_reason on
    /// some choice; `None` when nothing is held.
    pub fn take_remaining(&mut self) -> Option<Value> {
        let mut choices = Vec::new();
        for (index, splitter) in &mut self.choices {
            if !splitter.holds_text() {
                continue;
            }
            let piece = splitter.finish();
            let mut delta = Map::new();
            if !piece.reasoning.is_empty() {
                delta.insert("reasoning_content".into(), Value::String(piece.reasoning));
            }
            if !piece.content.is_empty() {
                delta.insert("content".into(), Value::String(piece.content));
            }
            choices
                .push(serde_json::json!({"index": index, "delta": delta, "finish_reason": null}));
        }
        if choices.is_empty() {
            return None;
        }
        Some(serde_json::json!({"object": "chat.completion.chunk", "choices": choices}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Feeds `text` cut at the given byte positions and returns (reasoning, content).
    fn feed(text: &str, cuts: &[usize]) -> (String, String) {
        let mut s = ThinkSplitter::default();
        let (mut r, mut c) = (String::new(), String::new());
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&text.len())) {
            let p = s.push(&text[last..cut]);
            r.push_str(&p.reasoning);
            c.push_str(&p.content);
            last = cut;
        }
        let p = s.finish();
        r.push_str(&p.reasoning);
        c.push_str(&p.content);
        (r, c)
    }

    #[test]
    fn reasoning_split_at_every_position_of_the_tags() {
        let text = "  <think>\nplan the answer\n</think>\n\nThe answer.";
        let want = ("\nplan the answer\n".to_string(), "The answer.".to_string());
        for a in 0..=text.len() {
            assert_eq!(feed(text, &[a]), want, "cut at {a}");
            for b in a..=text.len() {
                assert_eq!(feed(text, &[a, b]), want, "cuts at {a}, {b}");
            }
        }
        let every: Vec<usize> = (1..text.len()).collect();
        assert_eq!(feed(text, &every), want, "one character per piece");
    }

    #[test]
    fn reasoning_split_leaves_content_without_a_block_untouched() {
        for text in [
            "plain answer",
            "  indented answer",
            "<thinking>not our tag</thinking>",
            "<thin",
            "answer <think>late</think> block",
            "",
            "   ",
            "{\"a\": 1}",
        ] {
            assert!(split_text(text).is_none(), "{text:?}");
            let every: Vec<usize> = (1..text.len()).collect();
            assert_eq!(feed(text, &every), (String::new(), text.to_string()));
        }
    }

    #[test]
    fn reasoning_unclosed_block_stays_reasoning() {
        let text = "<think>still thinking </thi";
        assert_eq!(
            feed(text, &[3, 10, 22]),
            ("still thinking </thi".into(), String::new())
        );
        let p = split_text("<think>no end").unwrap();
        assert_eq!((p.reasoning.as_str(), p.content.as_str()), ("no end", ""));
    }

    #[test]
    fn reasoning_multibyte_text_around_the_tags() {
        let text = "<think>想一想</think>答案：好";
        let cuts: Vec<usize> = (1..text.len())
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        assert_eq!(feed(text, &cuts), ("想一想".into(), "答案：好".into()));
    }

    #[test]
    fn reasoning_split_completion_moves_the_block() {
        let mut v = json!({"choices": [
            {"index": 0, "message": {"role": "assistant", "content": "<think>a</think>\nb"}},
            {"index": 1, "message": {"role": "assistant", "content": "plain"}}
        ]});
        assert!(split_completion(&mut v));
        assert_eq!(v["choices"][0]["message"]["content"], "b");
        assert_eq!(v["choices"][0]["message"]["reasoning_content"], "a");
        assert_eq!(v["choices"][1]["message"]["content"], "plain");
        assert!(v["choices"][1]["message"]
            .get("reasoning_content")
            .is_none());
        let mut plain = json!({"choices": [{"message": {"content": "x"}}]});
        assert!(!split_completion(&mut plain));
    }

    #[test]
    fn reasoning_stream_splitter_rewrites_deltas_and_flushes_on_finish() {
        let mut s = StreamSplitter::default();
        let mut chunks: Vec<Value> = ["<th", "ink>r", "</think", ">", " ok"]
            .iter()
            .map(|t| json!({"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]}))
            .collect();
        chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
        let mut acc = crate::Accumulator::default();
        for c in &mut chunks {
            s.chunk(c);
            acc.push(c);
        }
        let done = acc.final_completion();
        assert_eq!(done["choices"][0]["message"]["content"], "ok");
        assert_eq!(done["choices"][0]["message"]["reasoning_content"], "r");
        // A plain stream keeps its chunks as they are.
        let mut s = StreamSplitter::default();
        let mut c = json!({"choices": [{"index": 0, "delta": {"content": "hi"}}]});
        assert!(!s.chunk(&mut c));
        assert_eq!(c["choices"][0]["delta"]["content"], "hi");
    }

    #[test]
    fn reasoning_stream_remaining_text_is_released_at_the_end() {
        let mut s = StreamSplitter::default();
        let mut c = json!({"choices": [{"index": 0, "delta": {"content": "<think>x</thi"}}]});
        s.chunk(&mut c);
        let rest = s.take_remaining().unwrap();
        assert_eq!(rest["choices"][0]["delta"]["reasoning_content"], "</thi");
        assert!(s.take_remaining().is_none());
    }
}
