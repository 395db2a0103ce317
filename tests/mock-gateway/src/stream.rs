//! `text/event-stream` answers: the normal token stream and every damaged variant.
//! Streams are sent with chunked transfer encoding, one HTTP chunk per write, so a stream can
//! stop, stall or reset anywhere. Large streams are generated as they are written.

use std::io;
use std::time::Duration;

use serde_json::{json, Value};

use crate::chat::{now_secs, prompt_tokens};
use crate::http::{stream_head, Conn};
use crate::scenario::{After, Ctx, Spec};

/// The normal token sequence.
const DEFAULT_TOKENS: [&str; 4] = ["Hello", ",", " world", "!"];
/// Content of the large streams: byte `i` is `PATTERN[i % 32]`.
const PATTERN: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz012345";
/// Size of one write for the big and endless streams.
const WRITE_SIZE: usize = 64 * 1024;
const MAX_TOKENS: u64 = 100_000;

/// Builds the JSON of the chunks of one stream.
struct Chunker {
    id: String,
    created: u64,
    model: String,
    prompt_tokens: u64,
}

impl Chunker {
    fn new(ctx: &Ctx<'_>) -> Chunker {
        Chunker {
            id: format!("chatcmpl-mock-{}", ctx.n),
            created: now_secs(),
            model: ctx.model(),
            prompt_tokens: prompt_tokens(ctx),
        }
    }

    fn chunk_value(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        })
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        self.chunk_value(delta, finish_reason).to_string()
    }

    fn usage(&self, completion_tokens: u64) -> String {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens
            }
        })
        .to_string()
    }

    /// Data of one content token event (the first one also carries the role).
    fn token(&self, i: usize, token: &str) -> String {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": token})
        } else {
            json!({"content": token})
        };
        self.chunk(delta, None)
    }

    /// Data of the tail of a stream: finish chunk, usage chunk, `[DONE]`.
    fn tail(&self, finish_reason: &str, completion_tokens: u64) -> Vec<String> {
        vec![
            self.chunk(json!({}), Some(finish_reason)),
            self.usage(completion_tokens),
            "[DONE]".to_string(),
        ]
    }

    /// Data of every event of the normal stream.
    fn normal(&self, tokens: &[String]) -> Vec<String> {
        let mut data: Vec<String> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| self.token(i, t))
            .collect();
        data.extend(self.tail("stop", tokens.len() as u64));
        data
    }
}

/// One SSE event `data: <data>` with the given line end.
fn frame(data: &str, line_end: &str) -> Vec<u8> {
    format!("data: {data}{line_end}{line_end}").into_bytes()
}

fn frame_all(data: &[String]) -> Vec<Vec<u8>> {
    data.iter().map(|d| frame(d, "\n")).collect()
}

/// The tokens of a normal stream: `tokens=N` gives `t0 … tN-1`, else the default four.
pub fn tokens_param(spec: &Spec) -> Result<Vec<String>, String> {
    match spec.get("tokens") {
        None => Ok(DEFAULT_TOKENS.iter().map(|t| t.to_string()).collect()),
        Some(_) => {
            let n = spec.u64_or("tokens", 0)?.min(MAX_TOKENS);
            Ok((0..n).map(|i| format!("t{i}")).collect())
        }
    }
}

/// Every event of the normal stream for `tokens`, with the given line end.
pub fn normal_events(ctx: &Ctx<'_>, tokens: &[String], line_end: &str) -> Vec<Vec<u8>> {
    Chunker::new(ctx)
        .normal(tokens)
        .iter()
        .map(|d| frame(d, line_end))
        .collect()
}

/// Sends a list of events as a complete stream.
pub async fn write_events(conn: &mut Conn, ctx: &Ctx<'_>, events: Vec<Vec<u8>>) -> After {
    let plan = Plan::Events {
        pieces: events,
        pause: None,
        bytewise: false,
        end: End::Finish,
    };
    execute(conn, ctx, plan).await.unwrap_or(After::Close)
}

/// How a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Terminate the chunked body; keep the connection if the client wants.
    Finish,
    /// Terminate the chunked body, then close.
    FinishAndClose,
    /// Close without terminating the chunked body.
    Abrupt,
    /// Leave the body unterminated and the socket open.
    Hold,
    /// Reset the connection.
    Reset,
}

enum Plan {
    /// Fixed pieces, each one write (or one write per byte).
    Events {
        pieces: Vec<Vec<u8>>,
        pause: Option<Duration>,
        bytewise: bool,
        end: End,
    },
    /// `count` content tokens of 1 KiB each.
    Large { count: u64, bytewise: bool },
    /// One event whose content is `bytes` long.
    BigEvent { bytes: u64 },
    /// `data: ` and an endless line.
    EndlessLine,
    /// Fixed pieces, then keep-alive pings (comments and `event: ping`) every `every`, forever.
    PingForever {
        pieces: Vec<Vec<u8>>,
        every: Duration,
    },
}

/// Runs a `stream*` scenario. `Err` (bad parameter) is reported before the head is sent.
pub async fn run(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    let plan = plan(ctx, spec)?;
    Ok(execute(conn, ctx, plan).await.unwrap_or(After::Close))
}

fn events(pieces: Vec<Vec<u8>>, end: End) -> Plan {
    Plan::Events {
        pieces,
        pause: None,
        bytewise: false,
        end,
    }
}

fn plan(ctx: &Ctx<'_>, spec: &Spec) -> Result<Plan, String> {
    let c = Chunker::new(ctx);
    let default_tokens: Vec<String> = DEFAULT_TOKENS.iter().map(|t| t.to_string()).collect();
    let plan = match spec.name.as_str() {
        "stream" => events(frame_all(&c.normal(&tokens_param(spec)?)), End::Finish),
        "stream-crlf" => events(
            c.normal(&tokens_param(spec)?)
                .iter()
                .map(|d| frame(d, "\r\n"))
                .collect(),
            End::Finish,
        ),
        "stream-cr" => events(
            c.normal(&tokens_param(spec)?)
                .iter()
                .map(|d| frame(d, "\r"))
                .collect(),
            End::Finish,
        ),
        "stream-keepalive" => {
            let mut pieces = Vec::new();
            for (i, d) in c.normal(&tokens_param(spec)?).iter().enumerate() {
                let before: &[u8] = match i {
                    0 => b": keep-alive\n\n",
                    1 => b"event: ping\ndata: \n\n",
                    i if i % 2 == 0 => b":\n\n",
                    _ => b": keep-alive\n\n",
                };
                pieces.push(before.to_vec());
                pieces.push(frame(d, "\n"));
            }
            events(pieces, End::Finish)
        }
        "stream-bytewise" => Plan::Events {
            pieces: frame_all(&c.normal(&tokens_param(spec)?)),
            pause: None,
            bytewise: true,
            end: End::Finish,
        },
        "stream-bom" => {
            let mut pieces = vec![b"\xEF\xBB\xBF".to_vec()];
            pieces.extend(frame_all(&c.normal(&tokens_param(spec)?)));
            events(pieces, End::Finish)
        }
        "stream-utf8split" => {
            let tokens = vec!["你好".to_string(), "世界".to_string()];
            let pieces = frame_all(&c.normal(&tokens))
                .iter()
                .flat_map(|event| split_inside_chars(event))
                .collect();
            Plan::Events {
                pieces,
                pause: Some(Duration::from_millis(5)),
                bytewise: false,
                end: End::Finish,
            }
        }
        "stream-multiline" => {
            let tokens = tokens_param(spec)?;
            let mut pieces = Vec::new();
            for (i, t) in tokens.iter().enumerate() {
                if i == 0 {
                    pieces.push(multiline_event(&c, t));
                } else {
                    pieces.push(frame(&c.token(i, t), "\n"));
                }
            }
            pieces.extend(frame_all(&c.tail("stop", tokens.len() as u64)));
            events(pieces, End::Finish)
        }
        "stream-event-error" => {
            let mut pieces = frame_all(&[c.token(0, "Hello"), c.token(1, ",")]);
            pieces.push(
                b"event: error\ndata: {\"error\":{\"message\":\"upstream overloaded\"}}\n\n"
                    .to_vec(),
            );
            events(pieces, End::Finish)
        }
        "stream-error-frame" => {
            let mut pieces = frame_all(&[c.token(0, "Hello"), c.token(1, ",")]);
            pieces.push(frame(
                r#"{"error":{"message":"rate limited mid-stream","code":"429"}}"#,
                "\n",
            ));
            events(pieces, End::Finish)
        }
        "stream-truncated" => {
            let pieces = frame_all(&[c.token(0, "Hello"), c.token(1, ",")]);
            let end = if spec.bool_or("abrupt", false)? {
                End::Abrupt
            } else {
                End::FinishAndClose
            };
            events(pieces, end)
        }
        "stream-done-keepopen" => events(frame_all(&c.normal(&tokens_param(spec)?)), End::Hold),
        "stream-tools" => events(frame_all(&tool_events(&c, true, false)), End::Finish),
        "stream-tools-noindex" => {
            let repeat_id = spec.bool_or("repeat_id", true)?;
            events(frame_all(&tool_events(&c, false, repeat_id)), End::Finish)
        }
        "stream-reasoning" => {
            let mut data = vec![
                c.chunk(
                    json!({"role": "assistant", "content": null, "reasoning_content": "Let me think"}),
                    None,
                ),
                c.chunk(
                    json!({"content": null, "reasoning_content": " about a greeting."}),
                    None,
                ),
            ];
            for t in DEFAULT_TOKENS {
                data.push(c.chunk(json!({"content": t}), None));
            }
            data.extend(c.tail("stop", 6));
            events(frame_all(&data), End::Finish)
        }
        "stream-stall" | "stream-reset" => {
            let after = spec.u64_or("after", 2)?.min(MAX_TOKENS);
            let tokens = if spec.get("tokens").is_some() {
                tokens_param(spec)?
            } else if after as usize > DEFAULT_TOKENS.len() {
                (0..after).map(|i| format!("t{i}")).collect()
            } else {
                default_tokens.clone()
            };
            let pieces = tokens
                .iter()
                .take(after as usize)
                .enumerate()
                .map(|(i, t)| frame(&c.token(i, t), "\n"))
                .collect();
            let end = if spec.name == "stream-stall" {
                End::Hold
            } else {
                End::Reset
            };
            events(pieces, end)
        }
        "stream-malformed" => {
            let data = c.normal(&default_tokens);
            let mut pieces = vec![frame(&data[0], "\n"), b"data: {not json\n\n".to_vec()];
            pieces.extend(frame_all(&data[1..]));
            events(pieces, End::Finish)
        }
        "stream-invalid-utf8" => {
            let data = c.normal(&default_tokens);
            let mut bad = b"data: ".to_vec();
            let json = c.chunk(json!({"content": "\u{1}"}), None);
            let (before, after) = json.split_once("\\u0001").unwrap_or((&json, ""));
            bad.extend_from_slice(before.as_bytes());
            bad.extend_from_slice(b"bad \xFF\xFE\xC3 bytes");
            bad.extend_from_slice(after.as_bytes());
            bad.extend_from_slice(b"\n\n");
            let mut pieces = vec![frame(&data[0], "\n"), bad];
            pieces.extend(frame_all(&data[1..]));
            events(pieces, End::Finish)
        }
        "stream-large" => {
            let bytes = spec.u64_or("bytes", 4 * 1024 * 1024)?;
            Plan::Large {
                count: bytes.div_ceil(1024).max(1),
                bytewise: spec.bool_or("bytewise", false)?,
            }
        }
        "stream-big-event" => Plan::BigEvent {
            bytes: spec.u64_or("bytes", 9 * 1024 * 1024)?,
        },
        "stream-endless-line" => Plan::EndlessLine,
        "stream-ping-forever" => {
            let after = spec.u64_or("after", 0)?.min(MAX_TOKENS) as usize;
            let pieces = (0..after)
                .map(|i| {
                    let t = DEFAULT_TOKENS
                        .get(i)
                        .map_or_else(|| format!("t{i}"), |t| t.to_string());
                    frame(&c.token(i, &t), "\n")
                })
                .collect();
            Plan::PingForever {
                pieces,
                every: Duration::from_millis(spec.u64_or("every_ms", 100)?.max(1)),
            }
        }
        "stream-empty" => {
            let end = if spec.bool_or("abrupt", false)? {
                End::Abrupt
            } else {
                End::FinishAndClose
            };
            events(Vec::new(), end)
        }
        other => return Err(format!("mock scenario {other:?} is not a stream")),
    };
    Ok(plan)
}

/// Splits an event so that every non-ASCII character is cut after its first byte.
fn split_inside_chars(event: &[u8]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, b) in event.iter().enumerate() {
        // A UTF-8 lead byte of a multi-byte character: cut right after it.
        if *b >= 0xC0 && i + 1 > start {
            pieces.push(event[start..=i].to_vec());
            start = i + 1;
        }
    }
    if start < event.len() {
        pieces.push(event[start..].to_vec());
    }
    pieces
}

/// A token event whose JSON is spread over several `data:` lines.
fn multiline_event(c: &Chunker, token: &str) -> Vec<u8> {
    let value = c.chunk_value(json!({"role": "assistant", "content": token}), None);
    let pretty = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    let mut out = String::new();
    for line in pretty.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.into_bytes()
}

/// Two tool calls streamed as deltas, arguments split over several chunks.
fn tool_events(c: &Chunker, with_index: bool, repeat_id: bool) -> Vec<String> {
    let calls: [(&str, &str, &[&str]); 2] = [
        (
            "call_mock_0",
            "get_weather",
            &["{\"city\": \"Pa", "ris\", \"unit\"", ": \"c\"}"],
        ),
        (
            "call_mock_1",
            "get_time",
            &["{\"timezone\": ", "\"Europe/Paris\"}"],
        ),
    ];
    let mut data = Vec::new();
    for (index, (id, name, parts)) in calls.iter().enumerate() {
        let mut first = json!({
            "id": id,
            "type": "function",
            "function": {"name": name, "arguments": ""}
        });
        if with_index {
            first["index"] = json!(index);
        }
        let delta = if index == 0 {
            json!({"role": "assistant", "content": null, "tool_calls": [first]})
        } else {
            json!({"tool_calls": [first]})
        };
        data.push(c.chunk(delta, None));
        for part in parts.iter() {
            let mut call = json!({"function": {"arguments": part}});
            if with_index {
                call["index"] = json!(index);
            }
            if repeat_id {
                call["id"] = json!(id);
            }
            data.push(c.chunk(json!({"tool_calls": [call]}), None));
        }
    }
    let completion = data.len() as u64;
    data.extend(c.tail("tool_calls", completion));
    data
}

async fn write_bytewise(conn: &mut Conn, bytes: &[u8]) -> io::Result<()> {
    for &b in bytes {
        conn.write_all(&[b'1', b'\r', b'\n', b, b'\r', b'\n'])
            .await?;
        tokio::task::yield_now().await;
    }
    Ok(())
}

async fn execute(conn: &mut Conn, ctx: &Ctx<'_>, plan: Plan) -> io::Result<After> {
    // A stream that ends by closing says so in its head.
    let closes = matches!(
        plan,
        Plan::Events {
            end: End::FinishAndClose | End::Abrupt,
            ..
        }
    );
    conn.write_all(&stream_head(&ctx.request_id, ctx.keep_alive && !closes))
        .await?;
    let end = match plan {
        Plan::Events {
            pieces,
            pause,
            bytewise,
            end,
        } => {
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 {
                    if let Some(pause) = pause {
                        tokio::time::sleep(pause).await;
                    }
                }
                if bytewise {
                    write_bytewise(conn, piece).await?;
                } else {
                    conn.write_chunk(piece).await?;
                }
            }
            end
        }
        Plan::Large { count, bytewise } => {
            let c = Chunker::new(ctx);
            let token: String = PATTERN
                .iter()
                .cycle()
                .take(1024)
                .map(|&b| b as char)
                .collect();
            for i in 0..count {
                let event = frame(&c.token(i as usize, &token), "\n");
                if bytewise {
                    write_bytewise(conn, &event).await?;
                } else {
                    conn.write_chunk(&event).await?;
                }
            }
            for d in c.tail("stop", count) {
                let event = frame(&d, "\n");
                if bytewise {
                    write_bytewise(conn, &event).await?;
                } else {
                    conn.write_chunk(&event).await?;
                }
            }
            End::Finish
        }
        Plan::BigEvent { bytes } => {
            let c = Chunker::new(ctx);
            let json = c.chunk(json!({"role": "assistant", "content": "\u{1}"}), None);
            let (before, after) = json.split_once("\\u0001").unwrap_or((&json, ""));
            conn.write_chunk(format!("data: {before}").as_bytes())
                .await?;
            let block: Vec<u8> = PATTERN.iter().cycle().take(WRITE_SIZE).copied().collect();
            let mut left = bytes;
            while left > 0 {
                let n = left.min(WRITE_SIZE as u64) as usize;
                conn.write_chunk(&block[..n]).await?;
                left -= n as u64;
            }
            conn.write_chunk(format!("{after}\n\n").as_bytes()).await?;
            for d in c.tail("stop", 1) {
                conn.write_chunk(&frame(&d, "\n")).await?;
            }
            End::Finish
        }
        Plan::PingForever { pieces, every } => {
            for piece in &pieces {
                conn.write_chunk(piece).await?;
            }
            let pings: [&[u8]; 3] = [b": keep-alive\n\n", b"event: ping\ndata: \n\n", b"\n"];
            for ping in pings.iter().cycle() {
                tokio::time::sleep(every).await;
                conn.write_chunk(ping).await?;
            }
            End::Hold
        }
        Plan::EndlessLine => {
            conn.write_chunk(b"data: ").await?;
            let mut framed = format!("{WRITE_SIZE:x}\r\n").into_bytes();
            framed.extend(PATTERN.iter().cycle().take(WRITE_SIZE));
            framed.extend_from_slice(b"\r\n");
            loop {
                conn.write_all(&framed).await?;
            }
        }
    };
    Ok(match end {
        End::Finish => {
            conn.end_chunks().await?;
            if ctx.keep_alive {
                After::KeepAlive
            } else {
                After::Close
            }
        }
        End::FinishAndClose => {
            conn.end_chunks().await?;
            After::Close
        }
        End::Abrupt => After::Close,
        End::Hold => After::HoldOpen,
        End::Reset => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            After::Reset
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_cuts_inside_every_multibyte_character() {
        let event = "data: 你好\n\n".as_bytes();
        let pieces = split_inside_chars(event);
        assert_eq!(pieces.concat(), event);
        assert_eq!(pieces.len(), 3);
        for piece in &pieces[..2] {
            assert!(std::str::from_utf8(piece).is_err());
        }
    }

    #[test]
    fn tokens_param_gives_numbered_tokens() {
        let spec = Spec::parse("stream:tokens=3").unwrap();
        assert_eq!(tokens_param(&spec).unwrap(), vec!["t0", "t1", "t2"]);
        let spec = Spec::parse("stream").unwrap();
        assert_eq!(tokens_param(&spec).unwrap().concat(), "Hello, world!");
    }
}
