//! Deterministic embeddings: a normalized bag-of-words hash. Each lowercased word (or each
//! CJK character) adds 1 to slot `fnv1a64(word) % dimensions`; the vector is then scaled to
//! unit length, so texts sharing words have a high cosine similarity.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::http::Response;
use crate::scenario::Ctx;

pub const DEFAULT_DIMENSIONS: usize = 1024;
const MAX_DIMENSIONS: u64 = 65_536;

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// CJK ideographs, kana and hangul: each such character is a word of its own.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x3FFFF  // CJK extensions B and later
    )
}

/// Lowercased words: runs of alphanumerics, with every CJK character a word by itself.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            words.push(c.to_string());
        } else if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The unit-length embedding of `text` (a text without words gets slot 0 = 1).
pub fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let dimensions = dimensions.max(1);
    let mut counts = vec![0f64; dimensions];
    for word in tokenize(text) {
        counts[(fnv1a64(word.as_bytes()) % dimensions as u64) as usize] += 1.0;
    }
    let norm = counts.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        counts[0] = 1.0;
        return counts.iter().map(|&x| x as f32).collect();
    }
    counts.iter().map(|&x| (x / norm) as f32).collect()
}

/// Little-endian f32 bytes, base64-encoded (OpenAI's `encoding_format: "base64"`).
pub fn to_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The texts of an `input`: a string, a list of strings, or token arrays (as `"tok<id> …"`).
fn inputs(input: Option<&Value>) -> Result<Vec<String>, String> {
    let tokens_text = |items: &[Value]| -> Result<String, String> {
        items
            .iter()
            .map(|t| {
                t.as_u64()
                    .map(|id| format!("tok{id}"))
                    .ok_or_else(|| "input token arrays must hold integers".to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|words| words.join(" "))
    };
    match input {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if items.is_empty() => {
            Err("'input' must not be an empty list".into())
        }
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            Ok(vec![tokens_text(items)?])
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Array(tokens) => tokens_text(tokens),
                _ => Err("'input' items must be strings or token arrays".to_string()),
            })
            .collect(),
        Some(_) => Err("'input' must be a string or a list".into()),
        None => Err("'input' is required".into()),
    }
}

/// The `embed` answer.
pub fn respond(ctx: &Ctx<'_>) -> Result<Response, String> {
    respond_with(ctx, None)
}

/// The `embed` answer; `forced_dims` gives every vector that size whatever was asked.
pub fn respond_with(ctx: &Ctx<'_>, forced_dims: Option<usize>) -> Result<Response, String> {
    let Some(body) = ctx.body.as_ref().filter(|b| b.is_object()) else {
        return Err("request body is not a JSON object".into());
    };
    let texts = inputs(body.get("input"))?;
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => match v.as_u64() {
            Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => d as usize,
            _ => {
                return Err(format!(
                    "'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}"
                ))
            }
        },
    };
    let dimensions = forced_dims.unwrap_or(dimensions);
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(format!(
                "'encoding_format' must be \"float\" or \"base64\", not {other:?}"
            ))
        }
    };
    let mut tokens = 0u64;
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokens += tokenize(text).len().max(1) as u64;
            let vector = embed(text, dimensions);
            let embedding = if base64 {
                json!(to_base64(&vector))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": ctx.model(),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    });
    Ok(Response::json(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn same_text_gives_the_same_vector() {
        assert_eq!(
            embed("The cat sat on the mat", 64),
            embed("The cat sat on the mat", 64)
        );
        // Case and punctuation do not matter.
        assert_eq!(embed("Hello, World!", 32), embed("hello world", 32));
    }

    #[test]
    fn vectors_have_unit_length_and_the_asked_size() {
        for text in ["a", "I like green tea", "你好世界", "", "!!!"] {
            let v = embed(text, 1024);
            assert_eq!(v.len(), 1024);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{text:?} has norm {norm}");
        }
        assert_eq!(embed("x", 8).len(), 8);
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let a = embed("I love drinking green tea in the morning", 1024);
        let b = embed("I love green tea", 1024);
        let c = embed("The stock market crashed yesterday", 1024);
        assert!(cosine(&a, &b) > 0.5);
        assert!(cosine(&a, &b) > cosine(&a, &c) + 0.3);
    }

    #[test]
    fn cjk_characters_are_single_words() {
        assert_eq!(
            tokenize("我喜欢Tea-time"),
            vec!["我", "喜", "欢", "tea", "time"]
        );
        let a = embed("我喜欢喝绿茶", 1024);
        let b = embed("我喜欢绿茶", 1024);
        let c = embed("股市昨天崩盘", 1024);
        assert!(cosine(&a, &b) > cosine(&a, &c));
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let v = vec![1.0f32, -0.5];
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(to_base64(&v))
            .unwrap();
        assert_eq!(
            decoded,
            [1.0f32.to_le_bytes(), (-0.5f32).to_le_bytes()].concat()
        );
    }

    #[test]
    fn inputs_accept_strings_lists_and_token_arrays() {
        assert_eq!(inputs(Some(&json!("a"))).unwrap(), vec!["a"]);
        assert_eq!(inputs(Some(&json!(["a", "b"]))).unwrap(), vec!["a", "b"]);
        assert_eq!(inputs(Some(&json!([1, 2]))).unwrap(), vec!["tok1 tok2"]);
        assert_eq!(
            inputs(Some(&json!([[1], [2, 3]]))).unwrap(),
            vec!["tok1", "tok2 tok3"]
        );
        assert!(inputs(Some(&json!([]))).is_err());
        assert!(inputs(Some(&json!({"a": 1}))).is_err());
        assert!(inputs(None).is_err());
    }
}
