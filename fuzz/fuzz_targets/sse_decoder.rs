//! The SSE decoder on arbitrary bytes fed in arbitrary splits: it never panics, decoding in
//! pieces gives exactly what decoding in one piece gives, and both agree with a plain
//! reference reading of the WHATWG event-stream rules. With a small size cap the decoder
//! may refuse more when fed in pieces (it checks partial lines), never less.
#![no_main]

use claw_llm::sse::{SseDecoder, SseError, SseEvent};
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<SseEvent>, Option<SseError>);

fn decode<'a>(pieces: impl Iterator<Item = &'a [u8]>, cap: usize) -> Outcome {
    let mut d = SseDecoder::new(cap);
    let mut events = Vec::new();
    for piece in pieces {
        let r = d.feed(piece);
        while let Some(e) = d.next_event() {
            events.push(e);
        }
        if let Err(e) = r {
            return (events, Some(e));
        }
    }
    (events, None)
}

/// Piece lengths from a xorshift generator seeded by the input: 1 to `max` bytes each.
fn pieces(input: &[u8], seed: u64, max: usize) -> Vec<&[u8]> {
    let mut state = seed | 1;
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = 1 + (state as usize % max.max(1));
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// The event-stream rules read literally: lines end at CRLF, CR or LF; a blank line
/// dispatches; `:` starts a comment; `data` and `event` values must be UTF-8.
fn reference(input: &[u8]) -> Outcome {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut events = Vec::new();
    let (mut data, mut has_data, mut event) = (String::new(), false, None::<String>);
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b != b'\n' && b != b'\r' {
            i += 1;
            continue;
        }
        let line = &input[start..i];
        i += if b == b'\r' && input.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        start = i;
        if line.is_empty() {
            let ev = event.take();
            if has_data {
                events.push(SseEvent {
                    event: ev,
                    data: std::mem::take(&mut data),
                });
                has_data = false;
            }
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (name, value) = match line.iter().position(|&c| c == b':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let text = || std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8);
        match name {
            b"data" => match text() {
                Ok(v) => {
                    if has_data {
                        data.push('\n');
                    }
                    data.push_str(v);
                    has_data = true;
                }
                Err(e) => return (events, Some(e)),
            },
            b"event" => match text() {
                Ok(v) => event = Some(v.to_string()),
                Err(e) => return (events, Some(e)),
            },
            _ => {}
        }
    }
    (events, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((ctl, input)) = data.split_first_chunk::<9>() else {
        return;
    };
    let seed = u64::from_le_bytes(ctl[..8].try_into().unwrap_or_default());
    // A cap no input here can reach: only UTF-8 errors are possible.
    let big = 4 * input.len() + 64;
    let whole = decode(std::iter::once(input), big);
    let max_piece = 1 + (ctl[8] as usize % 16);
    let split = decode(pieces(input, seed, max_piece).into_iter(), big);
    assert_eq!(whole, split, "one piece vs pieces of at most {max_piece}");
    let bytewise = decode(input.chunks(1), big);
    assert_eq!(whole, bytewise, "one piece vs one byte at a time");
    assert_eq!(whole, reference(input), "decoder vs reference");
    for e in &whole.0 {
        assert!(!e.data.contains('\r'));
        assert!(e.event.as_deref().is_none_or(|n| !n.contains(['\r', '\n'])));
    }

    // A small cap: refusing is fine, but what is accepted in pieces is accepted whole.
    let small = 1 + (ctl[8] as usize * 7) % 200;
    let whole = decode(std::iter::once(input), small);
    let split = decode(pieces(input, seed, max_piece).into_iter(), small);
    if split.1.is_none() {
        assert_eq!(
            whole, split,
            "accepted in pieces under cap {small}, not whole"
        );
    }
    for e in whole.0.iter().chain(&split.0) {
        assert!(
            e.data.len() <= small,
            "event of {} bytes under cap {small}",
            e.data.len()
        );
    }
});
