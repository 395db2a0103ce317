//! Spawns the real binary and talks to it over a raw `std::net::TcpStream`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Gateway {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `host:port`.
    addr: String,
}

impl Gateway {
    fn start() -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_claw-mock-gateway"))
            .args(["--port", "0", "--expect-key", "sk-test"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn claw-mock-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read first line");
        let base = line.trim();
        let addr = base
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("first line is not a base URL: {base:?}"))
            .to_string();
        let stdin = child.stdin.take();
        Gateway { child, stdin, addr }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

fn send(stream: &mut TcpStream, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).expect("write request");
}

fn read_exact_n(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) {
    while buf.len() < n {
        let mut tmp = [0u8; 8192];
        let got = stream.read(&mut tmp).expect("read");
        assert!(got > 0, "connection closed early");
        buf.extend_from_slice(&tmp[..got]);
    }
}

fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, pat: &[u8]) -> usize {
    loop {
        if let Some(i) = buf.windows(pat.len()).position(|w| w == pat) {
            return i;
        }
        let mut tmp = [0u8; 8192];
        let got = stream.read(&mut tmp).expect("read");
        assert!(got > 0, "connection closed early");
        buf.extend_from_slice(&tmp[..got]);
    }
}

/// Reads one response (Content-Length or chunked body).
fn receive(stream: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let end = read_until(stream, &mut buf, b"\r\n\r\n");
    let head = String::from_utf8(buf[..end].to_vec()).expect("UTF-8 head");
    let mut rest = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            let eol = read_until(stream, &mut rest, b"\r\n");
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16)
                .expect("chunk size");
            rest.drain(..eol + 2);
            if size == 0 {
                read_until(stream, &mut rest, b"\r\n");
                break;
            }
            read_exact_n(stream, &mut rest, size + 2);
            reply.body.extend_from_slice(&rest[..size]);
            rest.drain(..size + 2);
        }
    } else {
        let len: usize = reply
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("content-length");
        read_exact_n(stream, &mut rest, len);
        reply.body = rest[..len].to_vec();
    }
    reply
}

fn request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    send(stream, method, path, headers, body);
    receive(stream)
}

#[test]
fn ok_chat_echoes_the_request_and_the_log_records_it() {
    let gw = Gateway::start();
    let mut conn = gw.connect();
    let body = json!({"model": "gpt-test", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello mock"}
    ]})
    .to_string();
    let reply = request(
        &mut conn,
        "POST",
        "/v1/chat/completions?trace=1",
        &[("authorization", "Bearer sk-test"), ("x-custom", "abc")],
        &body,
    );
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("x-request-id")
        .is_some_and(|id| id.starts_with("req_")));
    let v = reply.json();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello mock");
    assert_eq!(v["x_provider_extra"], json!({"kept": true}));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let echo = &v["mock_echo"];
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/chat/completions");
    assert_eq!(echo["query"], "trace=1");
    assert_eq!(echo["headers"]["authorization"], "Bearer <redacted>");
    assert_eq!(echo["headers"]["x-custom"], "abc");
    assert_eq!(echo["body"]["model"], "gpt-test");

    // Same keep-alive connection: the log holds the chat request, not its own reads.
    let log = request(&mut conn, "GET", "/__mock/requests", &[], "").json();
    let entries = log.as_array().expect("array");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["path"], "/v1/chat/completions");
    assert_eq!(entries[0]["body"]["messages"][1]["content"], "hello mock");

    let cleared = request(&mut conn, "DELETE", "/__mock/requests", &[], "");
    assert_eq!(cleared.status, 200);
    let log = request(&mut conn, "GET", "/__mock/requests", &[], "").json();
    assert_eq!(log, json!([]));
}

#[test]
fn wrong_key_is_logged_as_mismatch_and_refused_by_auth() {
    let gw = Gateway::start();
    let mut conn = gw.connect();
    let body =
        json!({"model": "mock-auth", "messages": [{"role": "user", "content": "x"}]}).to_string();
    let reply = request(
        &mut conn,
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-wrong")],
        &body,
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["code"], "invalid_api_key");
    let log = request(&mut conn, "GET", "/__mock/requests", &[], "").json();
    assert_eq!(log[0]["headers"]["authorization"], "<mismatch>");
}

#[test]
fn fastapi422_scenario_answers_a_detail_list() {
    let gw = Gateway::start();
    let mut conn = gw.connect();
    let reply = request(
        &mut conn,
        "POST",
        "/api/chat",
        &[("x-mock-scenario", "err-fastapi422")],
        "{}",
    );
    assert_eq!(reply.status, 422);
    let v = reply.json();
    assert_eq!(v["detail"][0]["loc"], json!(["body", "messages"]));
    assert_eq!(v["detail"][1]["type"], "type_error.str");
}

#[test]
fn stream_scenario_sends_tokens_then_done() {
    let gw = Gateway::start();
    let mut conn = gw.connect();
    let body = json!({"model": "mock-stream", "messages": [{"role": "user", "content": "hi"}]})
        .to_string();
    let reply = request(&mut conn, "POST", "/v1/chat/completions", &[], &body);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let text = String::from_utf8(reply.body).expect("UTF-8 stream");
    let data: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let content: String = data
        .iter()
        .filter(|d| **d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(content, "Hello, world!");
    assert!(text.contains("\"finish_reason\":\"stop\""));
    assert!(text.contains("\"usage\""));

    // The chunked body ended cleanly, so the connection is reusable.
    let stats = request(&mut conn, "GET", "/__mock/stats", &[], "").json();
    assert_eq!(stats["open_connections"], 1);
}

#[test]
fn embeddings_honour_dimensions_and_are_unit_length() {
    let gw = Gateway::start();
    let mut conn = gw.connect();
    let body = json!({"model": "text-embedding-3-small", "input": ["green tea", "black tea"], "dimensions": 8})
        .to_string();
    let reply = request(&mut conn, "POST", "/v1/embeddings", &[], &body);
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    for (i, item) in v["data"].as_array().unwrap().iter().enumerate() {
        assert_eq!(item["index"], i);
        let vector: Vec<f64> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(vector.len(), 8);
        let norm: f64 = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // Deterministic: asking again gives the same vectors.
    let again = request(&mut conn, "POST", "/v1/embeddings", &[], &body).json();
    assert_eq!(again["data"], v["data"]);
}

#[test]
fn malformed_request_gets_400_not_a_crash() {
    let gw = Gateway::start();
    let mut conn = gw.connect();
    conn.write_all(b"\x01\x02 garbage\r\n\r\n").unwrap();
    let reply = receive(&mut conn);
    assert_eq!(reply.status, 400);
    // Still serving.
    let mut conn = gw.connect();
    let reply = request(&mut conn, "GET", "/__mock/stats", &[], "");
    assert_eq!(reply.status, 200);
}

#[test]
fn gateway_exits_when_stdin_closes() {
    let mut gw = Gateway::start();
    drop(gw.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = gw.child.try_wait().expect("try_wait") {
            assert!(status.success());
            return;
        }
        assert!(Instant::now() < deadline, "gateway still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}
