//! The URL rules on arbitrary text: `endpoint` never panics, and an endpoint it returns has
//! no `//` after the scheme and no `/v1/v1` (unless the base itself had it), both in its text
//! and in the path the HTTP client will actually request.
#![no_main]

use claw_llm::url::{endpoint, verbatim_endpoint, Endpoint};
use libfuzzer_sys::fuzz_target;

/// The path part of an URL text (after `scheme://authority`, before `?` or `#`).
fn path_of(url: &str) -> &str {
    let after = url.find("://").map_or(url, |i| &url[i + 3..]);
    let path = after.find('/').map_or("", |i| &after[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

/// Whether a path holds the segment pair `v1/v1` (a `/v1` added to a base that had one).
fn has_v1_v1(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments.windows(2).any(|w| w == ["v1", "v1"])
}

fuzz_target!(|data: &[u8]| {
    let Ok(base) = std::str::from_utf8(data) else {
        return;
    };
    let _ = verbatim_endpoint(base, "LLM_CHAT_URL");
    // What the base's own path says, as the parser reads it and as written.
    let base_has_v1v1 = url::Url::parse(base.trim()).is_ok_and(|u| has_v1_v1(u.path()))
        || has_v1_v1(path_of(base.trim()));
    for which in [Endpoint::Chat, Endpoint::Embeddings] {
        let Ok(out) = endpoint(base, which, "LLM_BASE_URL") else {
            continue;
        };
        let text_path = path_of(&out);
        assert!(!text_path.contains("//"), "{base:?} -> {out:?}");
        let wire = url::Url::parse(&out).expect("an endpoint is a valid URL");
        assert!(
            !wire.path().contains("//"),
            "{base:?} -> {out:?} requests {:?}",
            wire.path()
        );
        if !base_has_v1v1 {
            assert!(!has_v1_v1(text_path), "{base:?} -> {out:?}");
            assert!(
                !has_v1_v1(wire.path()),
                "{base:?} -> {out:?} requests {:?}",
                wire.path()
            );
        }
        let suffix = match which {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Embeddings => "/embeddings",
        };
        assert!(wire.path().ends_with(suffix), "{base:?} -> {out:?}");
    }
});
