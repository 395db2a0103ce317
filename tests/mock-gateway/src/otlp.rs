//! OTLP/HTTP trace receiver: `POST …/v1/traces` with a protobuf `ExportTraceServiceRequest`
//! (what `opentelemetry-otlp`'s http-proto exporter sends), so tests can point
//! `OTEL_EXPORTER_OTLP_ENDPOINT` at the mock and assert on the spans a client exported.
//!
//! Spans are kept flattened as JSON (one object per span, with its resource and scope) because
//! the Rust, Node and Python tests all read them back through `GET /__mock/spans`.

use std::borrow::Cow;
use std::io::Read as _;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span, status, Span, Status};
use prost::Message as _;
use serde_json::{json, Map, Value};

use crate::http::{Request, Response};
use crate::scenario::{invalid_request, Spec};
use crate::state::State;

/// Largest inflated gzip body accepted: the same cap as a plain request body, so a gzip bomb
/// is refused instead of filling the memory.
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// An error answer: status and message.
type Refusal = (u16, String);

/// What to do with one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Decode, store and answer.
    Answer,
    /// Read it and never answer (a dead collector), so tests can bound how long a client
    /// waits for its exporter.
    Hang,
}

/// Whether a request is a trace export: `POST` to a path (without the `/__gw/<spec>` prefix,
/// one trailing `/` ignored) ending in `/v1/traces`, under any prefix.
pub fn is_export(method: &str, api_path: &str) -> bool {
    let path = api_path.strip_suffix('/').unwrap_or(api_path);
    method == "POST" && path.ends_with("/v1/traces")
}

/// The plan from header `x-mock-scenario`, else the path's `/__gw/<spec>` prefix: `ok` (or
/// neither) answers, `hang` never does; any other scenario is refused, so a typo fails loudly.
pub fn plan(req: &Request, gateway: Option<&str>) -> Result<Plan, String> {
    let header = req
        .header("x-mock-scenario")
        .filter(|h| !h.trim().is_empty());
    let Some(raw) = header.or(gateway) else {
        return Ok(Plan::Answer);
    };
    let spec = Spec::parse(raw)?;
    match spec.name.as_str() {
        "ok" => Ok(Plan::Answer),
        "hang" => Ok(Plan::Hang),
        other => Err(format!(
            "mock scenario {other:?} does not apply to …/v1/traces (only ok and hang)"
        )),
    }
}

/// Decodes an export, stores its spans and answers an empty `ExportTraceServiceResponse`;
/// a body that does not decode is answered with a JSON error and stores nothing.
pub fn receive(state: &State, req: &Request) -> Response {
    match decode(req) {
        Ok(export) => {
            state.record_spans(flatten(&export));
            let body = ExportTraceServiceResponse::default().encode_to_vec();
            Response::new(200, "application/x-protobuf", body)
        }
        Err((status, message)) => Response::json(status, &invalid_request(&message)),
    }
}

/// The export in a request body: protobuf, optionally gzip-compressed. OTLP/JSON is refused
/// (415) rather than misread as protobuf.
fn decode(req: &Request) -> Result<ExportTraceServiceRequest, Refusal> {
    let content_type = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.trim_start().starts_with("application/json") {
        return Err((
            415,
            "the mock decodes OTLP/HTTP protobuf only (application/x-protobuf), not JSON".into(),
        ));
    }
    let body = inflate(req)?;
    ExportTraceServiceRequest::decode(body.as_ref()).map_err(|e| {
        (
            400,
            format!("body is not an OTLP ExportTraceServiceRequest: {e}"),
        )
    })
}

/// The body after its `content-encoding` (none, `identity` or `gzip`).
fn inflate(req: &Request) -> Result<Cow<'_, [u8]>, Refusal> {
    let encoding = req
        .header("content-encoding")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(Cow::Borrowed(&req.body)),
        "gzip" => gunzip(&req.body).map(Cow::Owned),
        other => Err((
            415,
            format!("content-encoding {other:?} is not supported (gzip or none)"),
        )),
    }
}

/// Inflates a gzip body, refusing one that inflates past [`MAX_INFLATED`].
fn gunzip(body: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| (400, format!("bad gzip body: {e}")))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err((413, "gzip body inflates past 64 MiB".into()));
    }
    Ok(out)
}

/// Every span of an export as one JSON object, in the order they arrived.
fn flatten(export: &ExportTraceServiceRequest) -> Vec<Value> {
    let mut spans = Vec::new();
    for resource_spans in &export.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map_or_else(|| json!({}), |r| attributes(&r.attributes));
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref().map_or("", |s| s.name.as_str());
            spans.extend(
                scope_spans
                    .spans
                    .iter()
                    .map(|s| span_json(s, &resource, scope)),
            );
        }
    }
    spans
}

fn span_json(span: &Span, resource: &Value, scope: &str) -> Value {
    json!({
        "name": span.name,
        "trace_id": hex(&span.trace_id),
        "span_id": hex(&span.span_id),
        "parent_span_id": hex(&span.parent_span_id),
        "kind": kind_name(span.kind),
        "start_unix_nano": span.start_time_unix_nano,
        "end_unix_nano": span.end_time_unix_nano,
        "status": status_json(span.status.as_ref()),
        "attributes": attributes(&span.attributes),
        "events": span.events.iter().map(event_json).collect::<Vec<_>>(),
        "resource": resource,
        "scope": scope,
    })
}

fn event_json(event: &span::Event) -> Value {
    json!({
        "name": event.name,
        "time_unix_nano": event.time_unix_nano,
        "attributes": attributes(&event.attributes),
    })
}

/// `{"code": "unset"|"ok"|"error", "message"}`; a span without a status is `unset`.
fn status_json(status: Option<&Status>) -> Value {
    let (code, message) = status.map_or((0, ""), |s| (s.code, s.message.as_str()));
    let code = status::StatusCode::try_from(code).map_or_else(
        |_| code.to_string(),
        |c| enum_name(c.as_str_name(), "STATUS_CODE_"),
    );
    json!({"code": code, "message": message})
}

/// The span kind as its proto name, lowercase without prefix (`"client"`); an unknown number
/// as its digits, so the field is always a string.
fn kind_name(kind: i32) -> String {
    span::SpanKind::try_from(kind).map_or_else(
        |_| kind.to_string(),
        |k| enum_name(k.as_str_name(), "SPAN_KIND_"),
    )
}

fn enum_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
}

/// Key-value pairs as a JSON object (a repeated key keeps its last value).
fn attributes(pairs: &[KeyValue]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, value)))
        .collect();
    Value::Object(map)
}

/// An attribute value as plain JSON: bytes as lowercase hex, an empty value as `null`.
fn value(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(any_value::Value::KvlistValue(l)) => attributes(&l.values),
        Some(any_value::Value::BytesValue(b)) => json!(hex(b)),
    }
}

/// Lowercase hex, as OTLP/JSON writes trace and span ids (`""` for no bytes).
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)], body: Vec<u8>) -> Request {
        Request {
            method: "POST".into(),
            path: "/v1/traces".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body,
            keep_alive: true,
        }
    }

    #[test]
    fn export_paths_take_any_prefix_and_one_trailing_slash() {
        assert!(is_export("POST", "/v1/traces"));
        assert!(is_export("POST", "/otlp/v1/traces/"));
        assert!(!is_export("GET", "/v1/traces"));
        assert!(!is_export("POST", "/v1/traces/extra"));
    }

    #[test]
    fn plan_takes_the_header_then_the_gateway_prefix() {
        let plain = post(&[], Vec::new());
        assert_eq!(plan(&plain, None), Ok(Plan::Answer));
        assert_eq!(plan(&plain, Some("hang")), Ok(Plan::Hang));
        assert!(plan(&plain, Some("slow")).is_err());
        assert!(plan(&plain, Some("otlp-hung")).is_err());
        let header = post(&[("x-mock-scenario", "ok")], Vec::new());
        assert_eq!(plan(&header, Some("hang")), Ok(Plan::Answer));
    }

    #[test]
    fn kinds_and_status_codes_are_lowercase_names() {
        assert_eq!(kind_name(3), "client");
        assert_eq!(kind_name(0), "unspecified");
        assert_eq!(kind_name(42), "42");
        let error = Status {
            message: "boom".into(),
            code: 2,
        };
        assert_eq!(
            status_json(Some(&error)),
            json!({"code": "error", "message": "boom"})
        );
        assert_eq!(status_json(None), json!({"code": "unset", "message": ""}));
    }

    #[test]
    fn gzip_bodies_are_inflated_and_other_encodings_refused() {
        let export = ExportTraceServiceRequest::default().encode_to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &export).unwrap();
        let req = post(&[("content-encoding", "gzip")], gz.finish().unwrap());
        assert_eq!(inflate(&req).unwrap().as_ref(), export.as_slice());
        let req = post(&[("content-encoding", "zstd")], export);
        assert_eq!(inflate(&req).unwrap_err().0, 415);
        let req = post(&[("content-encoding", "gzip")], b"not gzip".to_vec());
        assert_eq!(inflate(&req).unwrap_err().0, 400);
    }

    #[test]
    fn json_and_garbage_bodies_are_refused() {
        let req = post(&[("content-type", "application/json")], b"{}".to_vec());
        assert_eq!(decode(&req).unwrap_err().0, 415);
        let req = post(
            &[("content-type", "application/x-protobuf")],
            b"not protobuf".to_vec(),
        );
        assert_eq!(decode(&req).unwrap_err().0, 400);
    }
}
