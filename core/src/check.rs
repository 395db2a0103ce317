//! What came back: a 2xx body classified before anyone uses it. A JSON object is an answer;
//! `{"error": …}` without `choices`/`data` is `LLM_API_ERROR` (OneAPI does this); anything else
//! (an HTML page, truncated JSON, an empty body) is `LLM_BAD_RESPONSE` with a hint where one helps.

use crate::error::{http_detail, snippet, Error, Result};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

/// Which kind of request is under way (for the URL and the body check).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Chat,
    Embeddings,
    /// `GET /models`: the only request without a body.
    Models,
}

impl Kind {
    /// The HTTP method of this kind of request.
    pub(crate) fn method(self) -> reqwest::Method {
        match self {
            Kind::Models => reqwest::Method::GET,
            Kind::Chat | Kind::Embeddings => reqwest::Method::POST,
        }
    }
}

/// A 2xx answer whose body was read and checked.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// The gateway's request id.
    pub request_id: Option<String>,
    /// The body: valid JSON, an object, not an `error` envelope.
    pub body: Bytes,
    /// Where every attempt went when the call had fallbacks (endpoints, keys or models) to
    /// choose from; empty otherwise (see [`crate::Error::attempts_detail`]).
    pub attempts_detail: Vec<crate::AttemptDetail>,
    /// The body's `usage` token counts, when it has them.
    pub usage: Option<crate::events::Usage>,
}

impl Kind {
    /// What a 2xx answer of this kind should be, for messages.
    fn expected(self) -> &'static str {
        match self {
            Kind::Chat => "a chat completion",
            Kind::Embeddings => "an embeddings response",
            Kind::Models => "a list of models",
        }
    }
}

/// The JSON type of `v` in words (`array`, `string`, …).
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What is wrong with text that did not parse as JSON, in words and without the parser's
/// internals: cut short, or not valid JSON, and where.
pub(crate) fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("at line {} column {}", e.line(), e.column());
    match e.classify() {
        Category::Eof => format!("it is cut short {at}"),
        Category::Io => "it is not valid UTF-8".to_string(),
        Category::Syntax | Category::Data => format!("it is not valid JSON {at}"),
    }
}

impl RawResponse {
    /// Parses the body (it was already checked to be a JSON object).
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| Error::BadResponse {
            status: self.status,
            message: format!("the response is not valid JSON: {}", json_problem(&e)),
            snippet: snippet(&self.body),
            request_id: self.request_id.clone(),
            attempts: 1,
        })
    }
}

/// Just enough of a body to classify it, without building a tree.
#[derive(serde::Deserialize)]
struct Probe {
    error: Option<IgnoredAny>,
    choices: Option<IgnoredAny>,
    data: Option<IgnoredAny>,
}

/// [`check_body`] and [`RawResponse::json`] in one pass, for the callers that want the `Value`:
/// a body that parses as a JSON object, with at most one each of `error`, `choices` and `data` at
/// the top, is classified from those keys exactly as the probe classifies it. `None` for anything
/// else (not UTF-8, not an object, a syntax error, a duplicate of those keys, too deep): the caller
/// then takes the two-step path, whose results and messages are the reference.
pub(crate) fn parse_checked(
    status: u16,
    headers: &HeaderMap,
    bytes: &Bytes,
    request_id: &Option<String>,
) -> Option<Result<(RawResponse, Value)>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let top: TopLevel = serde_json::from_str(text).ok()?;
    let shape = top.shape;
    if shape.error && !shape.choices && !shape.data {
        return Some(Err(Error::Api(Box::new(http_detail(
            status, headers, bytes,
        )))));
    }
    let usage = top
        .map
        .get("usage")
        .and_then(crate::events::Usage::from_value);
    let raw = RawResponse {
        status,
        request_id: request_id.clone(),
        body: bytes.clone(),
        attempts_detail: Vec::new(),
        usage,
    };
    Some(Ok((raw, Value::Object(top.map))))
}

/// A top-level JSON object parsed into a `Map` (as `Value` parses it), noting whether `error`,
/// `choices` and `data` are there and not null; a second occurrence of one of them is an error,
/// as it is for the probe.
struct TopLevel {
    map: Map<String, Value>,
    shape: crate::probe::Shape,
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TopLevel;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<TopLevel, A::Error> {
                let mut map = Map::new();
                let mut shape = crate::probe::Shape::default();
                let mut seen = [false; 3];
                while let Some(key) = access.next_key::<String>()? {
                    let value: Value = access.next_value()?;
                    let (slot, present) = match key.as_str() {
                        "error" => (0, &mut shape.error),
                        "choices" => (1, &mut shape.choices),
                        "data" => (2, &mut shape.data),
                        _ => {
                            map.insert(key, value);
                            continue;
                        }
                    };
                    if std::mem::replace(&mut seen[slot], true) {
                        return Err(serde::de::Error::custom("duplicate field"));
                    }
                    *present = !value.is_null();
                    map.insert(key, value);
                }
                Ok(TopLevel { map, shape })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Checks that a 2xx body is a JSON object and not an `error` envelope.
pub(crate) fn check_body(
    status: u16,
    headers: &HeaderMap,
    bytes: &Bytes,
    request_id: Option<String>,
    kind: Kind,
) -> Result<RawResponse> {
    if let Some(message) = not_an_object(status, bytes, kind) {
        return Err(Error::BadResponse {
            status,
            message,
            snippet: snippet(bytes),
            request_id,
            attempts: 1,
        });
    }
    // IgnoredAny skips strings without checking their UTF-8, so check it first (SIMD-fast).
    // The fast scan answers the common bodies; serde decides (and words the errors) otherwise.
    let probe = std::str::from_utf8(bytes)
        .map_err(|e| serde_json::Error::io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        .and_then(|text| match crate::probe::scan(text.as_bytes()) {
            Some(shape) => Ok(shape),
            None => serde_json::from_str::<Probe>(text).map(|p| crate::probe::Shape {
                error: p.error.is_some(),
                choices: p.choices.is_some(),
                data: p.data.is_some(),
                usage: None,
            }),
        });
    match probe {
        Ok(p) => {
            if p.error && !p.choices && !p.data {
                return Err(Error::Api(Box::new(http_detail(status, headers, bytes))));
            }
            let usage = p
                .usage
                .and_then(|(from, to)| crate::events::Usage::from_json(&bytes[from..to]));
            Ok(RawResponse {
                status,
                request_id,
                body: bytes.clone(),
                attempts_detail: Vec::new(),
                usage,
            })
        }
        Err(e) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
            let looks_html = text.trim_start().starts_with('<');
            let message = if looks_html {
                let title = crate::error::summarize_body(status, None, &text);
                format!(
                    "the gateway answered {status} with an HTML page ({title}) instead of JSON; check LLM_BASE_URL (does it need /v1?)"
                )
            } else if bytes.is_empty() {
                format!("the gateway answered {status} with an empty body")
            } else {
                format!(
                    "the gateway answered {status} with a body that is not {}: {}",
                    kind.expected(),
                    json_problem(&e)
                )
            };
            Err(Error::BadResponse {
                status,
                message,
                snippet: snippet(bytes),
                request_id,
                attempts: 1,
            })
        }
    }
}

/// A body that is JSON but not an object (`[1,2]`, litellm's fan-out array, a string, a
/// number): worded as what it is. `None` when the body starts like an object, or is not JSON
/// at all (the probe then words the problem).
fn not_an_object(status: u16, bytes: &[u8], kind: Kind) -> Option<String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first == b'{' || *first == b'<' {
        return None;
    }
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let what = match &value {
        Value::Array(items) => format!("a JSON array of {} items", items.len()),
        Value::String(_) => "a JSON string".to_string(),
        Value::Number(_) => "a JSON number".to_string(),
        Value::Bool(_) => "a JSON boolean".to_string(),
        Value::Null => "JSON null".to_string(),
        Value::Object(_) => return None,
    };
    Some(format!(
        "the gateway answered {status} with {what}, not {}",
        kind.expected()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_check_classifies_2xx_bodies() {
        let h = HeaderMap::new();
        let ok = Bytes::from_static(br#"{"choices":[],"extra":1}"#);
        assert!(check_body(200, &h, &ok, None, Kind::Chat).is_ok());
        let api = Bytes::from_static(br#"{"error":{"message":"overloaded"}}"#);
        let e = check_body(200, &h, &api, None, Kind::Chat).unwrap_err();
        assert_eq!(e.code(), "LLM_API_ERROR");
        assert_eq!(e.to_string(), "overloaded");
        let html = Bytes::from_static(b"<html><title>OneAPI</title></html>");
        let e = check_body(200, &h, &html, None, Kind::Chat).unwrap_err();
        assert_eq!(e.code(), "LLM_BAD_RESPONSE");
        assert!(e.to_string().contains("/v1"), "{e}");
        let cut = Bytes::from_static(br#"{"choices":[{"mess"#);
        assert_eq!(
            check_body(200, &h, &cut, None, Kind::Chat)
                .unwrap_err()
                .code(),
            "LLM_BAD_RESPONSE"
        );
        for (body, what) in [
            (&br#"[1,2]"#[..], "a JSON array of 2 items"),
            (
                br#" [{"choices":[]},{"choices":[]},{"choices":[]}]"#,
                "a JSON array of 3 items",
            ),
            (br#""hello""#, "a JSON string"),
            (b"42", "a JSON number"),
        ] {
            let e =
                check_body(200, &h, &Bytes::copy_from_slice(body), None, Kind::Chat).unwrap_err();
            assert_eq!(e.code(), "LLM_BAD_RESPONSE");
            assert_eq!(
                e.to_string(),
                format!("the gateway answered 200 with {what}, not a chat completion")
            );
        }
        let e =
            check_body(200, &h, &Bytes::from_static(b"[]"), None, Kind::Embeddings).unwrap_err();
        assert!(e.to_string().ends_with("not an embeddings response"), "{e}");
        let e = check_body(200, &h, &cut, None, Kind::Chat).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the gateway answered 200 with a body that is not a chat completion: it is cut short at line 1 column 18"
        );
        let bad_utf8 = Bytes::from_static(b"{\"choices\":\"\xff\"}");
        assert_eq!(
            check_body(200, &h, &bad_utf8, None, Kind::Chat)
                .unwrap_err()
                .code(),
            "LLM_BAD_RESPONSE"
        );
    }

    #[test]
    fn one_pass_parse_agrees_with_check_then_parse() {
        let h = HeaderMap::new();
        let deep = format!("{{\"choices\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let bodies: Vec<&[u8]> = vec![
            br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"total_tokens":3},"x":[1,2.5e3]}"#,
            br#"{"object":"list","data":[{"embedding":[0.25,-1e-3]}],"model":"m"}"#,
            br#"{"error":{"message":"overloaded"}}"#,
            br#"{"error":null,"choices":null}"#,
            br#"{"error":"x","choices":[]}"#,
            br#"{"a":1,"a":2,"choices":[]}"#,
            br#"{"choices":[],"choices":[]}"#,
            br#"{"\u0065rror":{"message":"escaped key"}}"#,
            br#"{"n":1e400}"#,
            br#"{}"#,
            br#"[1,2,3]"#,
            b"<html><title>x</title></html>",
            b"{\"choices\":\"\xff\"}",
            b"",
            deep.as_bytes(),
        ];
        for body in bodies {
            let bytes = Bytes::copy_from_slice(body);
            let reference = check_body(200, &h, &bytes, None, Kind::Chat).and_then(|r| r.json());
            let reference = reference.map_err(|e| (e.code(), e.to_string()));
            match parse_checked(200, &h, &bytes, &None) {
                None => {} // the two-step path answers, so the result is the reference by construction
                Some(Ok((raw, v))) => {
                    assert_eq!(raw.body, bytes);
                    assert_eq!(Ok(v), reference, "{}", String::from_utf8_lossy(body));
                }
                Some(Err(e)) => assert_eq!(
                    Err((e.code(), e.to_string())),
                    reference,
                    "{}",
                    String::from_utf8_lossy(body)
                ),
            }
        }
        // The common bodies do take the one-pass path.
        let ok = Bytes::from_static(br#"{"choices":[]}"#);
        assert!(matches!(parse_checked(200, &h, &ok, &None), Some(Ok(..))));
        let api = Bytes::from_static(br#"{"error":{"message":"overloaded"}}"#);
        assert!(matches!(parse_checked(200, &h, &api, &None), Some(Err(_))));
    }
}
