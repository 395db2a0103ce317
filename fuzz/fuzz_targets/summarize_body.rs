//! The error-summary parser on arbitrary bodies: it never panics; for a text body (no JSON)
//! the summary is one line of at most 200 characters.
#![no_main]

use claw_llm::summarize_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_le_bytes(*status);
    let text = String::from_utf8_lossy(body);
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let with_json = summarize_body(status, json.as_ref(), &text);
    assert!(!with_json.is_empty());
    let summary = summarize_body(status, None, &text);
    assert!(
        summary.chars().count() <= 200,
        "{} chars: {summary:?}",
        summary.chars().count()
    );
    assert!(!summary.contains(['\n', '\r']), "{summary:?}");
    assert!(!summary.is_empty());
});
