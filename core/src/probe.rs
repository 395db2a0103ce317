//! What a 2xx body is, without building it: a JSON object, and whether it has a non-null
//! `error`, `choices` or `data` (docs/behaviour.md#errors: an `error` envelope without `choices`/`data` is
//! `LLM_API_ERROR`, a body that is not JSON is `LLM_BAD_RESPONSE`).
//!
//! [`scan`] is a single-pass JSON validator specialised for that question. It exists because
//! serde's skipping of ignored values walks numbers one `peek` at a time: for a 1024-float
//! embedding the check cost a third of parsing the whole body into a tree. It answers only when
//! it is sure, and then answers exactly what `serde_json::from_str::<Probe>` would; anything
//! unusual (a top-level array, an escaped top-level key, a duplicate `error`/`choices`/`data`,
//! deep nesting, any syntax error) gets `None`, and the caller asks serde, which produces the
//! same result and error messages as before.

/// The three fields that classify a 2xx body; `true` when present and not `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Shape {
    pub error: bool,
    pub choices: bool,
    pub data: bool,
    /// Where the top-level `usage` value is in the body (read for the statistics).
    pub usage: Option<(usize, usize)>,
}

/// Nesting handled by the fast path (deeper bodies go to serde).
const MAX_DEPTH: usize = 128;

/// Classifies `bytes` (already checked to be UTF-8), or `None` when serde must decide.
pub(crate) fn scan(bytes: &[u8]) -> Option<Shape> {
    let mut s = Scanner { b: bytes, i: 0 };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.i += 1;
    let mut shape = Shape::default();
    let mut seen = [false; 3];
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        loop {
            if s.peek()? != b'"' {
                return None;
            }
            let key = s.string()?;
            // serde unescapes keys before matching field names: leave escaped keys to it.
            if key.contains(&b'\\') {
                return None;
            }
            let field = match key {
                b"error" => Some(0),
                b"choices" => Some(1),
                b"data" => Some(2),
                _ => None,
            };
            s.ws();
            if s.peek()? != b':' {
                return None;
            }
            s.i += 1;
            s.ws();
            let is_null = s.b[s.i..].starts_with(b"null");
            let value_start = s.i;
            s.value()?;
            if key == b"usage" && !is_null {
                shape.usage = Some((value_start, s.i));
            }
            if let Some(f) = field {
                if seen[f] {
                    return None; // serde: "duplicate field"
                }
                seen[f] = true;
                let present = !is_null;
                match f {
                    0 => shape.error = present,
                    1 => shape.choices = present,
                    _ => shape.data = present,
                }
            }
            s.ws();
            match s.peek()? {
                b',' => {
                    s.i += 1;
                    s.ws();
                }
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(shape)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A string starting at the opening quote; returns its raw (still escaped) contents.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.i += 1;
        let start = self.i;
        loop {
            let rel = memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
            // Control characters are not allowed inside a string.
            if self.b[self.i..self.i + rel]
                .iter()
                .fold(false, |acc, &c| acc | (c < 0x20))
            {
                return None;
            }
            self.i += rel;
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Some(&self.b[start..self.i - 1]);
            }
            // An escape: \" \\ \/ \b \f \n \r \t or \u and four hex digits (surrogates unchecked,
            // as serde does for values it skips).
            match *self.b.get(self.i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                b'u' => {
                    let hex = self.b.get(self.i + 2..self.i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 6;
                }
                _ => return None,
            }
        }
    }

    /// Skips ASCII digits, eight at a time while it can (embeddings are mostly digits).
    #[inline]
    fn digits(&mut self) -> usize {
        const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
        const ZEROS: u64 = 0x3030_3030_3030_3030;
        let start = self.i;
        while let Some(Ok(eight)) = self.b.get(self.i..self.i + 8).map(<[u8; 8]>::try_from) {
            let x = u64::from_le_bytes(eight);
            // Every byte is 0x30..=0x39: high nibble 3, and adding 6 does not carry out of it.
            if x & HIGH != ZEROS || x.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
                break;
            }
            self.i += 8;
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// One value, nested arrays and objects included, without recursion.
    fn value(&mut self) -> Option<()> {
        // Open containers, innermost last: true for an object, false for an array.
        let mut stack = [false; MAX_DEPTH];
        let mut depth = 0usize;
        loop {
            // A value.
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b'n' => self.literal(b"null")?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                open @ (b'[' | b'{') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    let is_object = open == b'{';
                    stack[depth] = is_object;
                    depth += 1;
                    self.i += 1;
                    self.ws();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.i += 1;
                        depth -= 1;
                    } else {
                        if is_object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // After a value: a comma (then the next member) or the end of containers.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.ws();
                let is_object = stack[depth - 1];
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                        if is_object {
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if is_object => {}
                    b']' if !is_object => {}
                    _ => return None,
                }
                self.i += 1;
                depth -= 1;
            }
        }
    }

    /// `"key" :` inside an object, leaving the scanner at the member's value.
    fn key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.string()?;
        self.ws();
        if self.peek()? != b':' {
            return None;
        }
        self.i += 1;
        self.ws();
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;

    /// The reference: what serde says about the same body.
    #[derive(serde::Deserialize)]
    struct Probe {
        error: Option<IgnoredAny>,
        choices: Option<IgnoredAny>,
        data: Option<IgnoredAny>,
    }

    fn serde_shape(s: &str) -> Option<Shape> {
        serde_json::from_str::<Probe>(s).ok().map(|p| Shape {
            error: p.error.is_some(),
            choices: p.choices.is_some(),
            data: p.data.is_some(),
            usage: None,
        })
    }

    /// Whenever the fast path answers, serde answers the same (the `usage` range is the fast
    /// path's own extra).
    fn agrees(s: &str) {
        if let Some(fast) = scan(s.as_bytes()) {
            let classified = Shape {
                usage: None,
                ..fast
            };
            assert_eq!(Some(classified), serde_shape(s), "{s:?}");
        }
    }

    #[test]
    fn scan_finds_the_top_level_usage_only() {
        let body = r#"{"choices":[{"message":{"content":"{\"usage\": 1}","usage":2}}],"usage" : {"total_tokens":3}}"#;
        let (from, to) = scan(body.as_bytes()).unwrap().usage.unwrap();
        assert_eq!(&body[from..to], r#"{"total_tokens":3}"#);
        assert_eq!(scan(br#"{"usage":null}"#).unwrap().usage, None);
    }

    const SEEDS: &[&str] = &[
        r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"you\" \\ \/ \u00e9 \ud83d\ude00 \n"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"total_tokens":2}}"#,
        r#"{"object":"list","data":[{"embedding":[0.1,-2.5e-3,3E+2,0,-0,1.0e10,12345678901234567890],"index":0}],"model":"m"}"#,
        r#"{"error":{"message":"overloaded","type":null,"code":429}}"#,
        r#"{"error":null,"choices":[]}"#,
        " \t\r\n{ \"a\" : [ ] , \"b\" : { } , \"c\" : [ [ ], { \"x\" : [ true , false , null ] } ] } \n",
        r#"{}"#,
        r#"{"data":null,"error":"x"}"#,
        r#"{"choices":[{"delta":{}}],"x":{"y":{"z":[1,[2,[3,{"w":"\u0041"}]]]}}}"#,
    ];

    #[test]
    fn fast_probe_answers_common_bodies_like_serde() {
        for s in SEEDS {
            assert!(
                scan(s.as_bytes()).is_some(),
                "fast path should answer {s:?}"
            );
            agrees(s);
        }
    }

    #[test]
    fn fast_probe_defers_to_serde_when_unsure() {
        for s in [
            r#"[1,2,3]"#,
            r#""text""#,
            r#"{"\u0065rror":{}}"#,
            r#"{"choices":[],"choices":[]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1,}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12G4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":nul}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            "",
            "<html><title>x</title></html>",
        ] {
            assert_eq!(scan(s.as_bytes()), None, "{s:?}");
            agrees(s);
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(scan(deep.as_bytes()), None);
        agrees(&deep);
    }

    #[test]
    fn fast_probe_never_disagrees_with_serde_on_mutated_bodies() {
        // Deterministic mutations (xorshift) of the seeds: byte replacements, insertions and
        // deletions drawn from JSON's own alphabet. Whenever the fast path answers, serde must
        // give the same answer; the rest goes to serde anyway.
        const ALPHABET: &[u8] = b"{}[]:,\"\\/-+.0123456789eEnulltruefalsebfrt \t\n\rxu\x01A";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut answered = 0;
        for round in 0..40_000 {
            let mut b = SEEDS[round % SEEDS.len()].as_bytes().to_vec();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % (b.len() + 1);
                let c = ALPHABET[(next() as usize) % ALPHABET.len()];
                match next() % 3 {
                    0 if at < b.len() => b[at] = c,
                    1 => b.insert(at, c),
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => b.insert(at, c),
                }
            }
            let Ok(s) = std::str::from_utf8(&b) else {
                continue;
            };
            if scan(b.as_slice()).is_some() {
                answered += 1;
            }
            agrees(s);
        }
        assert!(
            answered > 1_000,
            "the fast path answered only {answered} times"
        );
    }
}
