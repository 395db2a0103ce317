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

/// Writes one request; `body` is bytes so protobuf bodies (OTLP) go through the same helper.
fn send(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) {
    let body = body.as_ref();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).expect("write request");
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
    body: impl AsRef<[u8]>,
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

mod otlp {
    use std::io::ErrorKind;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Status;
    use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    use super::*;

    const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    /// One client span with a parent, an attribute of every value type and an event.
    fn export() -> ExportTraceServiceRequest {
        use any_value::Value as V;
        let string = |s: &str| AnyValue {
            value: Some(V::StringValue(s.into())),
        };
        let span = Span {
            trace_id: (1..=16).collect(),
            span_id: vec![0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7],
            parent_span_id: vec![0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7],
            name: "chat qwen-plus".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_250_000_000,
            attributes: vec![
                kv("gen_ai.request.model", V::StringValue("qwen-plus".into())),
                kv("gen_ai.usage.input_tokens", V::IntValue(12)),
                kv("temperature", V::DoubleValue(0.5)),
                kv("stream", V::BoolValue(false)),
                kv(
                    "stops",
                    V::ArrayValue(ArrayValue {
                        values: vec![string("a"), string("b")],
                    }),
                ),
                kv(
                    "nested",
                    V::KvlistValue(KeyValueList {
                        values: vec![kv("inner", V::IntValue(-3))],
                    }),
                ),
                kv("raw", V::BytesValue(vec![0xde, 0xad, 0x01])),
            ],
            events: vec![span::Event {
                time_unix_nano: 1_700_000_000_100_000_000,
                name: "retry".into(),
                attributes: vec![kv("attempt", V::IntValue(2))],
                dropped_attributes_count: 0,
            }],
            status: Some(Status {
                message: "upstream 503".into(),
                code: status::StatusCode::Error as i32,
            }),
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", V::StringValue("otlp-test".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "claw-llm".into(),
                        ..Default::default()
                    }),
                    spans: vec![span],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn exported_spans_are_listed_flattened_then_cleared() {
        let gw = Gateway::start();
        let mut conn = gw.connect();
        let reply = request(
            &mut conn,
            "POST",
            "/v1/traces",
            &[PROTOBUF],
            export().encode_to_vec(),
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
        assert!(reply.body.is_empty(), "an empty ExportTraceServiceResponse");

        let spans = request(&mut conn, "GET", "/__mock/spans", &[], "").json();
        assert_eq!(
            spans,
            json!([{
                "name": "chat qwen-plus",
                "trace_id": "0102030405060708090a0b0c0d0e0f10",
                "span_id": "a0a1a2a3a4a5a6a7",
                "parent_span_id": "b0b1b2b3b4b5b6b7",
                "kind": "client",
                "start_unix_nano": 1_700_000_000_000_000_000u64,
                "end_unix_nano": 1_700_000_000_250_000_000u64,
                "status": {"code": "error", "message": "upstream 503"},
                "attributes": {
                    "gen_ai.request.model": "qwen-plus",
                    "gen_ai.usage.input_tokens": 12,
                    "temperature": 0.5,
                    "stream": false,
                    "stops": ["a", "b"],
                    "nested": {"inner": -3},
                    "raw": "dead01",
                },
                "events": [{
                    "name": "retry",
                    "time_unix_nano": 1_700_000_000_100_000_000u64,
                    "attributes": {"attempt": 2},
                }],
                "resource": {"service.name": "otlp-test"},
                "scope": "claw-llm",
            }])
        );
        // Exports are not in the request log, so request counts elsewhere are unaffected.
        let log = request(&mut conn, "GET", "/__mock/requests", &[], "").json();
        assert_eq!(log, json!([]));

        let cleared = request(&mut conn, "DELETE", "/__mock/spans", &[], "").json();
        assert_eq!(cleared, json!({"cleared": 1}));
        let spans = request(&mut conn, "GET", "/__mock/spans", &[], "").json();
        assert_eq!(spans, json!([]));
    }

    #[test]
    fn a_prefixed_path_is_received_and_garbage_is_a_json_400() {
        let gw = Gateway::start();
        let mut conn = gw.connect();
        let reply = request(
            &mut conn,
            "POST",
            "/otlp/v1/traces",
            &[PROTOBUF],
            export().encode_to_vec(),
        );
        assert_eq!(reply.status, 200);
        let reply = request(&mut conn, "POST", "/v1/traces", &[PROTOBUF], "not protobuf");
        assert_eq!(reply.status, 400);
        assert!(reply.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ExportTraceServiceRequest")));
        let spans = request(&mut conn, "GET", "/__mock/spans", &[], "").json();
        assert_eq!(spans.as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn the_hang_prefix_never_answers_an_export() {
        let gw = Gateway::start();
        let mut conn = gw.connect();
        conn.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        send(
            &mut conn,
            "POST",
            "/__gw/hang/v1/traces",
            &[PROTOBUF],
            export().encode_to_vec(),
        );
        let mut byte = [0u8; 1];
        let err = conn.read(&mut byte).expect_err("no answer expected");
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        // Held, not stored: the collector is "dead".
        let spans = request(&mut gw.connect(), "GET", "/__mock/spans", &[], "").json();
        assert_eq!(spans, json!([]));
    }
}
