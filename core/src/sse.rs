//! A Server-Sent Events decoder (WHATWG "event stream interpretation") tuned for LLM streams.
//!
//! Bytes go in as they arrive from the socket, split anywhere; whole events come out.
//! Handles LF, CR and CRLF line ends (a CRLF split across two reads too), a leading BOM,
//! comments, multi-line `data:`, and UTF-8 characters split across reads (lines are decoded
//! only once complete). Work and memory are linear in the bytes received: a partial line is
//! never re-scanned, and nothing is copied more than once per line.
//!
//! We do not use `eventsource-stream`: its nom parser re-scans an incomplete line from its start
//! on every read (quadratic for a large event arriving in small reads), copies the remaining
//! buffer after every line, and has no size cap.

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when one was given (`None` means the default `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A line was not valid UTF-8.
    InvalidUtf8,
    /// One event (or one line) grew past the size cap.
    TooLarge(usize),
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::InvalidUtf8 => f.write_str("invalid UTF-8 in the event stream"),
            SseError::TooLarge(cap) => write!(f, "an event of the stream exceeds {cap} bytes"),
        }
    }
}

/// Incremental SSE decoder.
///
/// ```
/// use claw_llm::sse::SseDecoder;
/// let mut d = SseDecoder::new(1 << 20);
/// d.feed(b"data: hel").unwrap();
/// assert!(d.next_event().is_none());
/// d.feed(b"lo\r\n\r\n: ping\n\ndata: [DONE]\n\n").unwrap();
/// assert_eq!(d.next_event().unwrap().data, "hello");
/// assert_eq!(d.next_event().unwrap().data, "[DONE]");
/// ```
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a line end.
    scanned: usize,
    /// The previous read ended in CR: a LF at the start of the next one belongs to it.
    skip_lf: bool,
    bom_state: BomState,
    data: String,
    has_data: bool,
    event: Option<String>,
    ready: VecDeque<SseEvent>,
    max_event_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomState {
    Undecided,
    Done,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseDecoder {
    /// A decoder refusing any event (or line) larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            buf: Vec::new(),
            scanned: 0,
            skip_lf: false,
            bom_state: BomState::Undecided,
            data: String::new(),
            has_data: false,
            event: None,
            ready: VecDeque::new(),
            max_event_bytes,
        }
    }

    /// Takes the next complete event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    /// Events decoded and not yet taken.
    pub fn pending(&self) -> usize {
        self.ready.len()
    }

    /// Feeds bytes as they arrived; complete events become available from [`Self::next_event`].
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), SseError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.skip_lf {
            self.skip_lf = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        if self.bom_state == BomState::Undecided {
            self.buf.extend_from_slice(bytes);
            let n = self.buf.len().min(3);
            if self.buf[..n] != BOM[..n] {
                self.bom_state = BomState::Done;
            } else if self.buf.len() >= 3 {
                self.buf.drain(..3);
                self.bom_state = BomState::Done;
            } else {
                return Ok(());
            }
            return self.scan_buffer();
        }
        // Fast path: nothing pending, parse straight from the read without copying.
        if self.buf.is_empty() {
            let consumed = self.parse_lines(bytes)?;
            let rest = &bytes[consumed..];
            if !rest.is_empty() {
                self.check_cap(rest.len())?;
                self.buf.extend_from_slice(rest);
                self.scanned = rest.len();
            }
            return Ok(());
        }
        self.check_cap(self.buf.len() + bytes.len())?;
        self.buf.extend_from_slice(bytes);
        self.scan_buffer()
    }

    fn check_cap(&self, partial_line: usize) -> Result<(), SseError> {
        if partial_line + self.data.len() > self.max_event_bytes {
            Err(SseError::TooLarge(self.max_event_bytes))
        } else {
            Ok(())
        }
    }

    fn scan_buffer(&mut self) -> Result<(), SseError> {
        // Only the bytes after `scanned` can hold the first line end.
        let Some(rel) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scanned..]) else {
            self.scanned = self.buf.len();
            return self.check_cap(self.buf.len());
        };
        let first_end = self.scanned + rel;
        let buf = std::mem::take(&mut self.buf);
        let result = self.parse_lines_from(&buf, first_end);
        self.buf = buf;
        let consumed = result?;
        self.buf.drain(..consumed);
        self.scanned = self.buf.len();
        self.check_cap(self.buf.len())
    }

    /// Parses every complete line of `bytes`; returns how many bytes were consumed.
    fn parse_lines(&mut self, bytes: &[u8]) -> Result<usize, SseError> {
        match memchr::memchr2(b'\n', b'\r', bytes) {
            Some(end) => self.parse_lines_from(bytes, end),
            None => Ok(0),
        }
    }

    fn parse_lines_from(&mut self, bytes: &[u8], mut end: usize) -> Result<usize, SseError> {
        let mut start = 0;
        loop {
            self.line(&bytes[start..end])?;
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                if next < bytes.len() {
                    if bytes[next] == b'\n' {
                        next += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            start = next;
            match memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
                Some(rel) => end = start + rel,
                None => return Ok(start),
            }
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                let value = std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8)?;
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(SseError::TooLarge(self.max_event_bytes));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            b"event" => {
                let value = std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8)?;
                self.event = Some(value.to_string());
            }
            _ => {} // id, retry and unknown fields do not matter to a one-shot LLM stream
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let data = std::mem::take(&mut self.data);
        self.ready.push_back(SseEvent { event, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::new(64 << 20);
        let mut out = vec![];
        for chunk in input.chunks(piece) {
            d.feed(chunk).unwrap();
            while let Some(e) = d.next_event() {
                out.push(e);
            }
        }
        out
    }

    fn datas(evs: &[SseEvent]) -> Vec<&str> {
        evs.iter().map(|e| e.data.as_str()).collect()
    }

    const SAMPLE: &str = "data: one\n\n: keep-alive\n\nevent: error\ndata: {\"a\":\ndata: 1}\n\ndata:two\n\ndata: [DONE]\n\n";

    #[test]
    fn stream_lf_cr_crlf_line_ends() {
        for eol in ["\n", "\r", "\r\n"] {
            let input = SAMPLE.replace('\n', eol);
            for piece in [1, 2, 3, 7, 1000] {
                let evs = decode_in_pieces(input.as_bytes(), piece);
                assert_eq!(
                    datas(&evs),
                    ["one", "{\"a\":\n1}", "two", "[DONE]"],
                    "eol {eol:?} piece {piece}"
                );
                assert_eq!(evs[1].event.as_deref(), Some("error"));
                assert_eq!(evs[0].event, None);
            }
        }
    }

    #[test]
    fn stream_crlf_split_across_reads_is_one_line_end() {
        let mut d = SseDecoder::new(1024);
        d.feed(b"data: a\r").unwrap();
        d.feed(b"\n\r").unwrap();
        d.feed(b"\ndata: b\r\n\r\n").unwrap();
        let evs: Vec<_> = std::iter::from_fn(|| d.next_event()).collect();
        assert_eq!(datas(&evs), ["a", "b"]);
    }

    #[test]
    fn stream_split_inside_utf8_char() {
        let input = "data: {\"c\":\"你好世界\"}\n\n".as_bytes();
        for piece in 1..6 {
            let evs = decode_in_pieces(input, piece);
            assert_eq!(datas(&evs), ["{\"c\":\"你好世界\"}"]);
        }
    }

    #[test]
    fn stream_leading_bom_is_dropped() {
        let input = b"\xEF\xBB\xBFdata: x\n\n";
        for piece in 1..4 {
            assert_eq!(datas(&decode_in_pieces(input, piece)), ["x"]);
        }
    }

    #[test]
    fn stream_comments_and_empty_events_are_skipped() {
        let evs = decode_in_pieces(
            b":\n\n: ping\n\nevent: ping\n\nid: 4\nretry: 10\n\ndata\n\n",
            4,
        );
        assert_eq!(datas(&evs), [""]);
    }

    #[test]
    fn stream_invalid_utf8_is_an_error() {
        let mut d = SseDecoder::new(1024);
        assert_eq!(d.feed(b"data: \xff\xfe\n\n"), Err(SseError::InvalidUtf8));
    }

    #[test]
    fn stream_event_over_cap_is_refused() {
        let mut d = SseDecoder::new(100);
        d.feed(b"data: ").unwrap();
        let big = vec![b'x'; 200];
        assert_eq!(d.feed(&big), Err(SseError::TooLarge(100)));
        let mut d = SseDecoder::new(100);
        let err = (0..50).try_for_each(|_| d.feed(b"data: 1234\n"));
        assert_eq!(err, Err(SseError::TooLarge(100)));
    }

    #[test]
    fn stream_large_event_one_byte_at_a_time_is_linear() {
        // 8 MiB + change in single bytes: quadratic work would take minutes.
        let payload = "y".repeat(8 * 1024 * 1024 + 17);
        let input = format!("data: {payload}\n\n");
        let mut d = SseDecoder::new(64 << 20);
        for b in input.as_bytes() {
            d.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(d.next_event().unwrap().data.len(), payload.len());
    }
}
