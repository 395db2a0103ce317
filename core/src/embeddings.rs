//! The embeddings request (docs/behaviour.md#calls) and a helper that pulls the vectors out of the reply.

use crate::error::{Error, Result};
use bytes::Bytes;
use serde_json::{Map, Value};

/// Builds the `/embeddings` body: `input` a string or a list of strings, `encoding_format`
/// `float` unless asked otherwise, `dimensions` from the call or else from `EMBEDDING_DIMS`.
pub(crate) fn request_body(
    model: &str,
    input: Value,
    mut params: Map<String, Value>,
    default_dims: Option<u32>,
) -> Result<Bytes> {
    match &input {
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
    params.shift_remove("model");
    params.shift_remove("input");
    let mut body = Map::with_capacity(params.len() + 4);
    body.insert("model".into(), Value::String(model.to_string()));
    body.insert("input".into(), input);
    if !params.contains_key("encoding_format") {
        body.insert("encoding_format".into(), Value::String("float".into()));
    }
    if !params.contains_key("dimensions") {
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
        snippet: crate::client::snippet(reply.to_string().as_bytes()),
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
            let e = request_body("m", bad.clone(), Map::new(), None).unwrap_err();
            assert_eq!(e.code(), "LLM_CLIENT_CONFIG", "{bad}");
        }
    }
}
