//! Hand-written HTTP/1.1 on a raw `TcpStream`: request parsing (Content-Length and chunked
//! bodies, keep-alive, pipelining) and response writing (Content-Length bodies, chunked
//! streams). Writing by hand is what lets the scenarios stall, reset or trickle at will.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted (request line + headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 100;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query string, always starting with `/`.
    pub path: String,
    /// Raw query string without the `?` (empty when absent).
    pub query: String,
    /// Headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
}

impl Request {
    /// First value of a header (name is matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Malformed request: answer 400 and close.
    Bad(String),
    /// Head or body over the limits: answer with this status and close.
    TooLarge(u16, String),
    /// The socket failed or closed mid-request: just close.
    Io,
}

/// A connection's byte stream: plain TCP, or TLS over it (`--tls-dir`).
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {
    /// The TCP socket underneath (for SO_LINGER).
    fn tcp(&self) -> &TcpStream;
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Io for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// One accepted connection with its read buffer.
pub struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: Box<dyn Io>) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(8 * 1024),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` on EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads the next request. `Ok(None)` when the client closed the connection cleanly
    /// between requests.
    pub async fn read_request(&mut self) -> Result<Option<Request>, ReadError> {
        // Head.
        let (head_len, mut req, body_kind, expect_continue) = loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf)? {
                    Some(parsed) => break parsed,
                    None if self.buf.len() > MAX_HEAD => {
                        return Err(ReadError::TooLarge(431, "request head too large".into()))
                    }
                    None => {}
                }
            }
            match self.fill().await {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) | Err(_) => return Err(ReadError::Io),
                Ok(_) => {}
            }
        };
        self.buf.drain(..head_len);

        if expect_continue && !matches!(body_kind, BodyKind::Length(0)) {
            self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| ReadError::Io)?;
        }

        // Body.
        req.body = match body_kind {
            BodyKind::Length(n) => {
                if n > MAX_BODY {
                    return Err(ReadError::TooLarge(413, "request body too large".into()));
                }
                while self.buf.len() < n {
                    match self.fill().await {
                        Ok(0) | Err(_) => return Err(ReadError::Io),
                        Ok(_) => {}
                    }
                }
                self.buf.drain(..n).collect()
            }
            BodyKind::Chunked => self.read_chunked().await?,
        };
        Ok(Some(req))
    }

    /// Decodes a `Transfer-Encoding: chunked` request body (trailers are read and dropped).
    async fn read_chunked(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| ReadError::Bad(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    if self.read_line().await?.is_empty() {
                        return Ok(body);
                    }
                }
            }
            if size > MAX_BODY - body.len() {
                return Err(ReadError::TooLarge(413, "request body too large".into()));
            }
            while self.buf.len() < size + 2 {
                match self.fill().await {
                    Ok(0) | Err(_) => return Err(ReadError::Io),
                    Ok(_) => {}
                }
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(ReadError::Bad("chunk not followed by CRLF".into()));
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }

    /// One CRLF- (or LF-) terminated line, without its terminator.
    async fn read_line(&mut self) -> Result<String, ReadError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Bad("line too long in chunked body".into()));
            }
            match self.fill().await {
                Ok(0) | Err(_) => return Err(ReadError::Io),
                Ok(_) => {}
            }
        }
    }

    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data).await?;
        self.stream.flush().await
    }

    /// Writes one chunk of a chunked body (an empty `data` is skipped: it would end the body).
    pub async fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut framed = Vec::with_capacity(data.len() + 12);
        framed.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        self.write_all(&framed).await
    }

    /// Ends a chunked body.
    pub async fn end_chunks(&mut self) -> io::Result<()> {
        self.write_all(b"0\r\n\r\n").await
    }

    /// Reads and discards everything until the client closes (or the socket fails).
    pub async fn wait_for_close(&mut self) {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Closes with a TCP RST instead of a FIN (SO_LINGER 0, then drop).
    pub fn reset(self) {
        let _ = socket2::SockRef::from(self.stream.tcp()).set_linger(Some(Duration::ZERO));
        drop(self.stream);
    }
}

enum BodyKind {
    Length(usize),
    Chunked,
}

type ParsedHead = (usize, Request, BodyKind, bool);

/// Parses a request head from `buf`; `Ok(None)` when more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<ParsedHead>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadError::TooLarge(431, "too many headers".into()))
        }
        Err(e) => return Err(ReadError::Bad(format!("malformed request: {e}"))),
    };
    let method = parsed.method.unwrap_or("GET").to_string();
    let target = parsed.path.unwrap_or("/");
    let version = parsed.version.unwrap_or(1);

    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();

    let header_has = |name: &str, token: &str| {
        headers.iter().any(|(n, v)| {
            n == name
                && v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    };

    let chunked = header_has("transfer-encoding", "chunked");
    let body_kind = if chunked {
        BodyKind::Chunked
    } else {
        let mut length: Option<usize> = None;
        for (n, v) in &headers {
            if n == "content-length" {
                let parsed: usize = v
                    .parse()
                    .map_err(|_| ReadError::Bad(format!("bad content-length {v:?}")))?;
                if length.is_some_and(|l| l != parsed) {
                    return Err(ReadError::Bad("conflicting content-length headers".into()));
                }
                length = Some(parsed);
            }
        }
        BodyKind::Length(length.unwrap_or(0))
    };

    let keep_alive = if version == 0 {
        header_has("connection", "keep-alive")
    } else {
        !header_has("connection", "close")
    };
    let expect_continue = header_has("expect", "100-continue");

    let (path, query) = split_target(target);
    let req = Request {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
        keep_alive,
    };
    Ok(Some((head_len, req, body_kind, expect_continue)))
}

/// Splits a request target into path and query; accepts absolute-form targets too.
fn split_target(target: &str) -> (String, String) {
    let mut rest = target;
    for scheme in ["http://", "https://"] {
        if let Some(after) = rest.strip_prefix(scheme) {
            rest = after.find('/').map(|i| &after[i..]).unwrap_or("/");
        }
    }
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    (path, query.to_string())
}

/// A complete (Content-Length) response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Status line and headers, adding `content-length`, `x-request-id` and `connection`.
    pub fn head(&self, request_id: &str, keep_alive: bool) -> Vec<u8> {
        let mut head = status_line(self.status);
        for (n, v) in &self.headers {
            // A value taken from a spec must not be able to split the head.
            let v = v.replace(['\r', '\n'], " ");
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        head.push_str(&common_headers(request_id, keep_alive));
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// Head of a response whose body is written separately: `content-length: N` when `length` is
/// given, else `transfer-encoding: chunked`.
pub fn body_head(
    status: u16,
    headers: &[(&str, &str)],
    length: Option<u64>,
    request_id: &str,
    keep_alive: bool,
) -> Vec<u8> {
    let mut head = status_line(status);
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    match length {
        Some(n) => head.push_str(&format!("content-length: {n}\r\n")),
        None => head.push_str("transfer-encoding: chunked\r\n"),
    }
    head.push_str(&common_headers(request_id, keep_alive));
    head.push_str("\r\n");
    head.into_bytes()
}

/// Head of a chunked `text/event-stream` response.
pub fn stream_head(request_id: &str, keep_alive: bool) -> Vec<u8> {
    let mut head = status_line(200);
    head.push_str("content-type: text/event-stream\r\n");
    head.push_str("cache-control: no-cache\r\n");
    head.push_str("transfer-encoding: chunked\r\n");
    head.push_str(&common_headers(request_id, keep_alive));
    head.push_str("\r\n");
    head.into_bytes()
}

fn status_line(status: u16) -> String {
    format!("HTTP/1.1 {status} {}\r\n", reason(status))
}

fn common_headers(request_id: &str, keep_alive: bool) -> String {
    format!(
        "x-request-id: {request_id}\r\nconnection: {}\r\n",
        if keep_alive { "keep-alive" } else { "close" }
    )
}

/// Reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        520 => "Unknown Error",
        524 => "A Timeout Occurred",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(raw: &str) -> ParsedHead {
        match parse_head(raw.as_bytes()) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => panic!("incomplete head"),
            Err(e) => panic!("parse failed: {e:?}"),
        }
    }

    #[test]
    fn splits_path_and_query_and_lowercases_headers() {
        let (len, req, body, _) =
            head_of("POST /v1/chat/completions?a=1&b=2 HTTP/1.1\r\nX-Mock-Scenario: ok\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(len, "POST /v1/chat/completions?a=1&b=2 HTTP/1.1\r\nX-Mock-Scenario: ok\r\nContent-Length: 5\r\n\r\n".len());
        assert_eq!(req.path, "/v1/chat/completions");
        assert_eq!(req.query, "a=1&b=2");
        assert_eq!(req.header("x-mock-scenario"), Some("ok"));
        assert!(matches!(body, BodyKind::Length(5)));
        assert!(req.keep_alive);
    }

    #[test]
    fn connection_close_and_http10_end_keep_alive() {
        let (_, req, _, _) = head_of("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!req.keep_alive);
        let (_, req, _, _) = head_of("GET / HTTP/1.0\r\n\r\n");
        assert!(!req.keep_alive);
    }

    #[test]
    fn absolute_form_target_keeps_only_the_path() {
        assert_eq!(
            split_target("http://example.test:8080/v1/embeddings?x=1"),
            ("/v1/embeddings".to_string(), "x=1".to_string())
        );
    }

    #[test]
    fn garbage_is_a_bad_request_not_a_panic() {
        assert!(matches!(
            parse_head(b"\x00\x01 nonsense\r\n\r\n"),
            Err(ReadError::Bad(_))
        ));
        assert!(matches!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
            Err(ReadError::Bad(_))
        ));
    }
}
