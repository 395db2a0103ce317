//! The error-shaped answers: `err-*`, `ok-error`, `ok-html`, and the OneAPI error bodies
//! that `auth` and `flaky` reuse.

use serde_json::json;

use crate::http::{reason, Response};
use crate::scenario::Spec;

/// OneAPI's invalid-token error with the given status.
pub fn oneapi_invalid_token(status: u16) -> Response {
    Response::json(
        status,
        &json!({"error": {
            "message": "Invalid token",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "param": null
        }}),
    )
}

/// A per-key rate limit (what `limit-key` answers for the key it refuses).
pub fn rate_limited(status: u16) -> Response {
    Response::json(
        status,
        &json!({"error": {
            "message": "Rate limit reached for this key",
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
            "param": null
        }}),
    )
}

/// OneAPI's invalid-token error as its Chinese build words it (`无效的令牌`).
pub fn oneapi_invalid_token_cn(status: u16) -> Response {
    Response::json(
        status,
        &json!({"error": {
            "message": "无效的令牌 (request id: 2026120122000000001)",
            "type": "one_api_error",
            "code": "",
            "param": ""
        }}),
    )
}

/// The answer of an `err-*`, `ok-error` or `ok-html` spec.
pub fn response(spec: &Spec) -> Result<Response, String> {
    let resp = match spec.name.as_str() {
        "err-oneapi" => oneapi_invalid_token(spec.status_or(401)?),
        "err-message" => Response::json(
            spec.status_or(400)?,
            &json!({"message": "Model not found"}),
        ),
        "err-string" => Response::json(
            spec.status_or(400)?,
            &json!({"error": "Bad gateway config"}),
        ),
        "err-detail" => Response::json(
            spec.status_or(400)?,
            &json!({"detail": "Not authenticated"}),
        ),
        "err-fastapi422" => Response::json(
            422,
            &json!({"detail": [
                {"loc": ["body", "messages"], "msg": "field required", "type": "value_error.missing"},
                {"loc": ["body", "model"], "msg": "str type expected", "type": "type_error.str"}
            ]}),
        ),
        "err-html" => {
            let status = spec.status_or(502)?;
            let title = format!("{status} {}", reason(status));
            Response::new(
                status,
                "text/html",
                format!(
                    "<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center><hr><center>nginx</center></body></html>"
                ),
            )
        }
        "err-text" => Response::new(spec.status_or(500)?, "text/plain", "upstream exploded"),
        "err-empty" => {
            let mut resp = Response::new(spec.status_or(503)?, "", Vec::new());
            resp.headers.clear();
            resp
        }
        "err-quota" => Response::json(
            429,
            &json!({"error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota"
            }}),
        ),
        "ok-error" => Response::json(
            200,
            &json!({"error": {
                "message": "当前分组上游负载已饱和",
                "type": "one_api_error",
                "code": "overloaded"
            }}),
        ),
        "err-retryerror" => Response::json(
            500,
            &json!({"detail": "RetryError[<Future at 0x7f3a2c1d9e50 state=finished raised APIConnectionError>]"}),
        ),
        "err-notfound" => Response::json(404, &json!({"detail": "Not Found"})),
        "ok-html" => Response::new(
            200,
            "text/html",
            "<html><head><title>OneAPI</title></head><body><div id=\"root\">OneAPI: please log in</div></body></html>",
        ),
        // A Flask API gateway that wraps its upstream's JSON error in a string.
        "err-flask" => Response::json(
            spec.status_or(401)?,
            &json!({"error": format!(
                "API Error: {}",
                json!({"error": {"message": "Invalid token", "type": "invalid_request_error", "code": "invalid_api_key"}})
            )}),
        ),
        // FastAPI's answer for a path it has no route for.
        "err-not-found" => Response::json(404, &json!({"detail": "Not Found"})),
        "ok-not-object" => Response::json(200, &not_object(spec.get("shape").unwrap_or("pair"))?),
        other => return Err(format!("{other:?} is not an error scenario")),
    };
    Ok(resp)
}

/// 2xx bodies that are JSON but not an object: `pair` `[1,2]`, `triple` (three completions),
/// `fanout` (litellm's multi-model answer: four completions, ~4 KB), `string`, `number`.
fn not_object(shape: &str) -> Result<serde_json::Value, String> {
    let completion = |i: usize, content: &str| {
        json!({
            "id": format!("chatcmpl-mock-{i}"),
            "object": "chat.completion",
            "model": format!("model-{i}"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        })
    };
    Ok(match shape {
        "pair" => json!([1, 2]),
        "triple" => json!((0..3).map(|i| completion(i, "Hello")).collect::<Vec<_>>()),
        "fanout" => {
            let long = "word ".repeat(160);
            json!((0..4).map(|i| completion(i, &long)).collect::<Vec<_>>())
        }
        "string" => json!("Hello"),
        "number" => json!(42),
        other => {
            return Err(format!(
                "mock parameter shape={other:?} is not one of pair, triple, fanout, string, number"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(spec: &str) -> (u16, String) {
        let resp = response(&Spec::parse(spec).unwrap()).unwrap();
        (resp.status, String::from_utf8(resp.body).unwrap())
    }

    #[test]
    fn error_statuses_default_and_override() {
        assert_eq!(body_of("err-oneapi").0, 401);
        assert_eq!(body_of("err-oneapi:status=403").0, 403);
        assert_eq!(body_of("err-message").0, 400);
        assert_eq!(body_of("err-html").0, 502);
        assert_eq!(body_of("err-text").0, 500);
        assert_eq!(body_of("err-empty"), (503, String::new()));
        assert_eq!(body_of("err-quota").0, 429);
        assert_eq!(body_of("err-fastapi422").0, 422);
        assert_eq!(body_of("err-flask").0, 401);
        assert_eq!(
            body_of("err-not-found"),
            (404, r#"{"detail":"Not Found"}"#.into())
        );
        assert_eq!(body_of("ok-not-object").1, "[1,2]");
        assert!(body_of("ok-not-object:shape=fanout").1.len() > 3000);
        assert!(response(&Spec::parse("ok-not-object:shape=tree").unwrap()).is_err());
    }

    #[test]
    fn html_error_names_its_status() {
        let (status, body) = body_of("err-html:status=504");
        assert_eq!(status, 504);
        assert!(body.starts_with("<html><head><title>504 Gateway Timeout</title></head><body>"));
    }
}
