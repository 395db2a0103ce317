//! The embeddings request (docs/behaviour.md#calls) and a helper that pulls the vectors out of the reply.

use crate::error::{Error, Result};
use bytes::Bytes;
use serde_json::{Map, Value};

/// Checks `input`: a string or a non-empty list of strings (a config error otherwise).
pub(crate) fn check_input(input: &Value) -> Result<()> {
    match input {
        Value::String(_) => {}
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {}
        Value::Array(items) if items.is_empty() => {
            return Err(Error::config(
                "input must be a string or a non-empty list of strings, got []",
            ))
        }
        _ => {
            return Err(Error::config(
                "input must be a string or a non-empty list of strings",
            ))
        }
    }
    Ok(())
}

/// The vector size a call expects: its `dimensions`, else `EMBEDDING_DIMS`. A `dimensions` that
/// is not a positive integer is a config error.
pub(crate) fn expected_dims(
    params: &Map<String, Value>,
    configured: Option<u32>,
) -> Result<Option<usize>> {
    match params.get("dimensions") {
        None | Some(Value::Null) => Ok(configured.map(|d| d as usize)),
        Some(v) => match v.as_u64() {
            Some(d) if d > 0 => Ok(Some(d as usize)),
            _ => Err(Error::config(format!(
                "dimensions must be a positive integer, got {v}"
            ))),
        },
    }
}

/// Builds the `/embeddings` body: `input` a string or a list of strings, `encoding_format`
/// `float` unless asked otherwise, `dimensions` from the call or else from `EMBEDDING_DIMS`;
/// with `send_dims` false (`EMBEDDING_SEND_DIMS=0`) no `dimensions` at all.
pub(crate) fn request_body(
    model: &str,
    input: Value,
    mut params: Map<String, Value>,
    default_dims: Option<u32>,
    send_dims: bool,
) -> Result<Bytes> {
    check_input(&input)?;
    if !send_dims {
        params.shift_remove("dimensions");
    }
    params.shift_remove("model");
    params.shift_remove("input");
    let mut body = Map::with_capacity(params.len() + 4);
    body.insert("model".into(), Value::String(model.to_string()));
    body.insert("input".into(), input);
    if !params.contains_key("encoding_format") {
        body.insert("encoding_format".into(), Value::String("float".into()));
    }
    if send_dims && !params.contains_key("dimensions") {
        if let Some(d) = default_dims {
            body.insert("dimensions".into(), Value::from(d));
        }
    }
    body.extend(params);
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| Error::config(format!("the request cannot be encoded as JSON: {e}")))
}

/// The vectors of an embeddings reply, in input order (`data[].embedding`, sorted by `index`).
///
/// ```
/// use serde_json::json;
/// let reply = json!({"data": [{"index": 1, "embedding": [0.5]}, {"index": 0, "embedding": [1.0, 2.0]}]});
/// assert_eq!(claw_llm::embeddings::vectors(&reply).unwrap(), vec![vec![1.0, 2.0], vec![0.5]]);
/// ```
pub fn vectors(reply: &Value) -> Result<Vec<Vec<f32>>> {
    let bad = |what: &str| Error::BadResponse {
        status: 200,
        message: format!("the embeddings reply {what}"),
        snippet: crate::error::snippet(reply.to_string().as_bytes()),
        request_id: None,
        attempts: 1,
    };
    let data = reply
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no data array"))?;
    let mut items: Vec<(u64, Vec<f32>)> = Vec::with_capacity(data.len());
    for (pos, item) in data.iter().enumerate() {
        let idx = item
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(pos as u64);
        let vec = item
            .get("embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("has an item without a float embedding (was base64 asked for?)"))?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| bad("has a non-numeric embedding value"))?;
        items.push((idx, vec));
    }
    items.sort_by_key(|(i, _)| *i);
    Ok(items.into_iter().map(|(_, v)| v).collect())
}

/// The error for a vector of the wrong size: a silent wrong size corrupts a vector store.
fn wrong_size(got: usize, expected: usize, position: usize) -> Error {
    Error::BadResponse {
        status: 200,
        message: format!(
            "the gateway returned a vector of {got} values for input {position} where {expected} were expected (EMBEDDING_DIMS / dimensions); check the model, or that the gateway honours dimensions"
        ),
        snippet: String::new(),
        request_id: None,
        attempts: 1,
    }
}

/// The number of values in one `embedding`: a float list, or base64 little-endian f32.
fn base64_floats(text: &str) -> usize {
    let len = text.bytes().filter(|b| !b.is_ascii_whitespace()).count();
    let pad = text.bytes().rev().take_while(|b| *b == b'=').count().min(2);
    (len / 4 * 3).saturating_sub(pad) / 4
}

/// Checks every vector of a parsed embeddings reply has `expected` values.
pub(crate) fn check_dims(reply: &Value, expected: usize) -> Result<()> {
    let Some(data) = reply.get("data").and_then(Value::as_array) else {
        return Ok(()); // shape problems are reported where the vectors are read
    };
    for (pos, item) in data.iter().enumerate() {
        let got = match item.get("embedding") {
            Some(Value::Array(v)) => v.len(),
            Some(Value::String(s)) => base64_floats(s),
            _ => continue,
        };
        if got != expected {
            let position = item
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            return Err(wrong_size(got, expected, position as usize));
        }
    }
    Ok(())
}

/// [`check_dims`] on the body bytes, counting values without building the tree.
pub(crate) fn check_dims_raw(body: &[u8], expected: usize) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(default)]
        data: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        index: Option<u64>,
        embedding: Option<Count>,
    }
    struct Count(usize);
    impl<'de> serde::Deserialize<'de> for Count {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Count;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a list of floats or a base64 string")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> std::result::Result<Count, A::Error> {
                    let mut n = 0;
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        n += 1;
                    }
                    Ok(Count(n))
                }
                fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Count, E> {
                    Ok(Count(base64_floats(s)))
                }
            }
            d.deserialize_any(Visit)
        }
    }
    let Ok(reply) = serde_json::from_slice::<Reply>(body) else {
        return Ok(()); // not the usual shape: the caller's own checks word the error
    };
    for (pos, item) in reply.data.iter().enumerate() {
        if let Some(Count(got)) = item.embedding {
            if got != expected {
                let position = item.index.unwrap_or(pos as u64) as usize;
                return Err(wrong_size(got, expected, position));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(input: Value, params: Value, dims: Option<u32>) -> Value {
        let b = request_body(
            "text-embedding-v4",
            input,
            params.as_object().unwrap().clone(),
            dims,
            true,
        )
        .unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn embed_defaults_to_float_encoding() {
        let b = body(json!("hi"), json!({}), None);
        assert_eq!(b["encoding_format"], "float");
        assert!(b.get("dimensions").is_none());
        let b = body(
            json!(["a", "b"]),
            json!({"encoding_format": "base64", "dimensions": 8}),
            Some(1024),
        );
        assert_eq!(b["encoding_format"], "base64");
        assert_eq!(b["dimensions"], 8);
    }

    #[test]
    fn embed_dimensions_from_config_when_not_given() {
        assert_eq!(body(json!("hi"), json!({}), Some(1024))["dimensions"], 1024);
    }

    #[test]
    fn embed_rejects_bad_input() {
        for bad in [
            json!(1),
            json!([]),
            json!([1, 2]),
            json!(null),
            json!({"a": 1}),
        ] {
            let e = request_body("m", bad.clone(), Map::new(), None, true).unwrap_err();
            assert_eq!(e.code(), "LLM_CLIENT_CONFIG", "{bad}");
        }
    }

    #[test]
    fn embed_send_dims_off_keeps_dimensions_out() {
        let b = request_body(
            "m",
            json!("x"),
            json!({"dimensions": 8}).as_object().unwrap().clone(),
            Some(1024),
            false,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert!(v.get("dimensions").is_none(), "{v}");
    }

    #[test]
    fn embed_dims_check_counts_float_and_base64_vectors() {
        let ok = json!({"data": [{"index": 0, "embedding": [0.1, 0.2, 0.3]}]});
        assert!(check_dims(&ok, 3).is_ok());
        let e = check_dims(&ok, 4).unwrap_err();
        assert_eq!(e.code(), "LLM_BAD_RESPONSE");
        assert!(e.to_string().contains("3 values") && e.to_string().contains("4 were expected"));
        let bytes = serde_json::to_vec(&ok).unwrap();
        assert!(check_dims_raw(&bytes, 3).is_ok());
        assert_eq!(
            check_dims_raw(&bytes, 2).unwrap_err().code(),
            "LLM_BAD_RESPONSE"
        );
        // 3 floats = 12 bytes = 16 base64 characters; 2 floats = 8 bytes = "…=" padded.
        let b64 =
            json!({"data": [{"embedding": "AAAAAAAAAAAAAAAA"}, {"embedding": "AAAAAAAAAAA="}]});
        assert!(check_dims(&b64, 3).is_err());
        assert_eq!(base64_floats("AAAAAAAAAAAAAAAA"), 3);
        assert_eq!(base64_floats("AAAAAAAAAAA="), 2);
        let raw = serde_json::to_vec(&b64).unwrap();
        let e = check_dims_raw(&raw, 3).unwrap_err();
        assert!(e.to_string().contains("input 1"), "{e}");
    }
}
