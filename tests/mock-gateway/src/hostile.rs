//! Hostile answers: 2xx bodies far larger than any client should buffer (`ok-huge`), a gzip
//! bomb (`ok-gzip-bomb`), invalid UTF-8 inside JSON (`ok-invalid-utf8`), and redirects
//! (`redirect`, with `hops=N` chains). Large bodies are generated while they are written, so
//! the mock's own memory stays small whatever size is asked for.

use std::sync::OnceLock;

use flate2::{Compress, Compression, Crc, FlushCompress};

use crate::chat;
use crate::http::{body_head, Conn, Response};
use crate::scenario::{send, After, Ctx, Spec};

/// Size of one write of a large body.
const WRITE_SIZE: usize = 64 * 1024;
/// Default size of `ok-huge` and of the inflated `ok-gzip-bomb`.
const DEFAULT_HUGE: u64 = 256 * 1024 * 1024;
/// The gzip bomb repeats the deflate encoding of this many spaces.
const BOMB_BLOCK: usize = 1024 * 1024;
/// What the gzip bomb inflates to before its padding: a valid, empty completion (JSON allows
/// the trailing spaces, so a client without a size cap would accept the whole thing).
const BOMB_PREFIX: &[u8] = br#"{"object":"chat.completion","choices":[]}"#;

fn finish(ctx: &Ctx<'_>) -> After {
    if ctx.keep_alive {
        After::KeepAlive
    } else {
        After::Close
    }
}

/// Writes one piece of a body, framed as an HTTP chunk when `chunked`.
async fn write_piece(conn: &mut Conn, data: &[u8], chunked: bool) -> std::io::Result<()> {
    if chunked {
        conn.write_chunk(data).await
    } else {
        conn.write_all(data).await
    }
}

/// `ok-huge:bytes=N,chunked=0|1`: a valid chat completion of about N bytes whose content is
/// the `abc…` pattern. With a `Content-Length` by default; `chunked=1` sends it chunked, so a
/// client cannot refuse it from the head and has to count what it reads.
pub async fn huge(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    let bytes = spec.u64_or("bytes", DEFAULT_HUGE)?;
    let chunked = spec.bool_or("chunked", false)?;
    let prefix = format!(
        r#"{{"id":"chatcmpl-mock-{}","object":"chat.completion","model":{},"choices":[{{"index":0,"message":{{"role":"assistant","content":""#,
        ctx.n,
        serde_json::Value::String(ctx.model())
    );
    let suffix = r#""},"finish_reason":"stop"}]}"#;
    let fixed = (prefix.len() + suffix.len()) as u64;
    let filler = bytes.saturating_sub(fixed);
    let length = (!chunked).then_some(fixed + filler);
    let head = body_head(
        200,
        &[("content-type", "application/json")],
        length,
        &ctx.request_id,
        ctx.keep_alive,
    );
    if conn.write_all(&head).await.is_err()
        || write_piece(conn, prefix.as_bytes(), chunked).await.is_err()
    {
        return Ok(After::Close);
    }
    let pattern: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz012345"
        .iter()
        .cycle()
        .take(WRITE_SIZE)
        .copied()
        .collect();
    let mut left = filler;
    while left > 0 {
        let n = left.min(WRITE_SIZE as u64) as usize;
        if write_piece(conn, &pattern[..n], chunked).await.is_err() {
            return Ok(After::Close);
        }
        left -= n as u64;
    }
    if write_piece(conn, suffix.as_bytes(), chunked).await.is_err()
        || (chunked && conn.end_chunks().await.is_err())
    {
        return Ok(After::Close);
    }
    Ok(finish(ctx))
}

/// The reusable parts of the gzip bomb: the deflate encoding of `BOMB_PREFIX` + one block of
/// spaces, the encoding of one more block of spaces (valid after any block of spaces: it only
/// refers back to spaces), and their CRCs. Both end byte-aligned (sync flush) and non-final.
struct BombParts {
    first: Vec<u8>,
    repeat: Vec<u8>,
    first_crc: Crc,
    repeat_crc: Crc,
}

fn bomb_parts() -> Result<&'static BombParts, String> {
    static PARTS: OnceLock<BombParts> = OnceLock::new();
    if let Some(p) = PARTS.get() {
        return Ok(p);
    }
    let spaces = vec![b' '; BOMB_BLOCK];
    let mut first_input = BOMB_PREFIX.to_vec();
    first_input.extend_from_slice(&spaces);
    let mut c = Compress::new(Compression::best(), false);
    let first = deflate_sync(&mut c, &first_input)?;
    let repeat = deflate_sync(&mut c, &spaces)?;
    let mut first_crc = Crc::new();
    first_crc.update(&first_input);
    let mut repeat_crc = Crc::new();
    repeat_crc.update(&spaces);
    Ok(PARTS.get_or_init(|| BombParts {
        first,
        repeat,
        first_crc,
        repeat_crc,
    }))
}

/// Raw-deflates `input` and sync-flushes, so the output ends on a byte boundary.
fn deflate_sync(c: &mut Compress, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut consumed = 0usize;
    // Each round either consumes input or fills the output buffer; 10 000 rounds is plenty.
    for _ in 0..10_000 {
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 * 1024);
        }
        let before = c.total_in();
        c.compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
            .map_err(|e| format!("deflate failed: {e}"))?;
        consumed += (c.total_in() - before) as usize;
        // zlib's rule: the flush is complete once a call leaves output space unused.
        if consumed == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
    Err("deflate did not finish".into())
}

/// The gzip header of the bomb, the number of repeated blocks, and the trailer.
fn bomb_frame(blocks: u64) -> Result<(&'static BombParts, Vec<u8>), String> {
    let parts = bomb_parts()?;
    let mut crc = Crc::new();
    crc.combine(&parts.first_crc);
    for _ in 1..blocks {
        crc.combine(&parts.repeat_crc);
    }
    // An empty final stored block, then CRC-32 and the size mod 2^32 (RFC 1952).
    let mut trailer = vec![0x01, 0x00, 0x00, 0xFF, 0xFF];
    trailer.extend_from_slice(&crc.sum().to_le_bytes());
    trailer.extend_from_slice(&crc.amount().to_le_bytes());
    Ok((parts, trailer))
}

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];

/// The whole gzip bomb in memory (for tests of the mock itself; the scenario streams it).
#[cfg(test)]
fn gzip_bomb_bytes(bytes: u64) -> Result<Vec<u8>, String> {
    let blocks = bytes.div_ceil(BOMB_BLOCK as u64).max(1);
    let (parts, trailer) = bomb_frame(blocks)?;
    let mut out = GZIP_HEADER.to_vec();
    out.extend_from_slice(&parts.first);
    for _ in 1..blocks {
        out.extend_from_slice(&parts.repeat);
    }
    out.extend_from_slice(&trailer);
    Ok(out)
}

/// `ok-gzip-bomb:bytes=N,corrupt=0|1`: 200 `content-encoding: gzip` whose body (about N/1000
/// bytes) inflates to a valid empty completion followed by spaces, about N bytes in all (whole
/// MiB). `corrupt=1`: a gzip header followed by a deflate block of the reserved type (invalid).
pub async fn gzip_bomb(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    let bytes = spec.u64_or("bytes", DEFAULT_HUGE)?;
    if spec.bool_or("corrupt", false)? {
        let mut body = GZIP_HEADER.to_vec();
        body.extend_from_slice(&[0xFF; 64]);
        let resp =
            Response::new(200, "application/json", body).with_header("content-encoding", "gzip");
        return Ok(send(conn, ctx, &resp).await);
    }
    let blocks = bytes.div_ceil(BOMB_BLOCK as u64).max(1);
    let (parts, trailer) = bomb_frame(blocks)?;
    let length = (GZIP_HEADER.len() + parts.first.len() + trailer.len()) as u64
        + (blocks - 1) * parts.repeat.len() as u64;
    let mut out = body_head(
        200,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        Some(length),
        &ctx.request_id,
        ctx.keep_alive,
    );
    out.extend_from_slice(&GZIP_HEADER);
    out.extend_from_slice(&parts.first);
    let mut left = blocks - 1;
    while left > 0 || !out.is_empty() {
        while left > 0 && out.len() < WRITE_SIZE {
            out.extend_from_slice(&parts.repeat);
            left -= 1;
        }
        if left == 0 {
            out.extend_from_slice(&trailer);
        }
        if conn.write_all(&out).await.is_err() {
            return Ok(After::Close);
        }
        out.clear();
    }
    Ok(finish(ctx))
}

/// `ok-invalid-utf8`: 200 chat completion (correct Content-Length) whose content string holds
/// the bytes `FF FE C3`: `"bad \xFF\xFE\xC3 bytes"`.
pub async fn invalid_utf8(conn: &mut Conn, ctx: &Ctx<'_>) -> Result<After, String> {
    let json = chat::completion_body(ctx, "\u{1}");
    let (before, after) = json.split_once("\\u0001").unwrap_or((&json, ""));
    let mut body = before.as_bytes().to_vec();
    body.extend_from_slice(b"bad \xFF\xFE\xC3 bytes");
    body.extend_from_slice(after.as_bytes());
    Ok(send(conn, ctx, &Response::new(200, "application/json", body)).await)
}

/// The `hop` value of a query string (0 when absent) and the query without it.
fn split_hop(query: &str) -> (u64, Vec<&str>) {
    let mut hop = 0;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("hop=") {
            Some(v) => hop = v.parse().unwrap_or(0),
            None => rest.push(pair),
        }
    }
    (hop, rest)
}

/// `redirect:to=URL,status=S,hops=N`. Without `hops`: always S to `to` (pointing it at the
/// same URL makes a loop). With `hops`: while the request's `hop` query value is below N,
/// S to `to` (default: the request's own path and query) with `hop` set one higher; once it
/// reached N, the `ok` answer.
pub async fn redirect(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    let status = spec.status_or(307)?;
    let to = spec.get("to");
    let location = match spec.get("hops") {
        None => to
            .ok_or_else(|| "mock scenario redirect needs to=URL or hops=N".to_string())?
            .to_string(),
        Some(_) => {
            let hops = spec.u64_or("hops", 0)?;
            let (hop, rest) = split_hop(&ctx.req.query);
            if hop >= hops {
                let payload = chat::payload(ctx, spec, false)?;
                return Ok(chat::deliver(conn, ctx, payload).await);
            }
            let next = format!("hop={}", hop + 1);
            match to {
                Some(url) if url.contains('?') => format!("{url}&{next}"),
                Some(url) => format!("{url}?{next}"),
                None => {
                    let mut query = rest;
                    query.push(&next);
                    format!("{}?{}", ctx.req.path, query.join("&"))
                }
            }
        }
    };
    let resp = Response::new(status, "text/plain", Vec::new()).with_header("location", location);
    Ok(send(conn, ctx, &resp).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_bomb_inflates_to_prefix_and_spaces_with_a_valid_trailer() {
        let bomb = gzip_bomb_bytes(3 * BOMB_BLOCK as u64).unwrap();
        assert!(bomb.len() < 10_000, "{} compressed bytes", bomb.len());
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&bomb[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated.len(), BOMB_PREFIX.len() + 3 * BOMB_BLOCK);
        assert!(inflated.starts_with(BOMB_PREFIX));
        assert!(inflated[BOMB_PREFIX.len()..].iter().all(|&b| b == b' '));
        let v: serde_json::Value = serde_json::from_slice(&inflated).unwrap();
        assert_eq!(v["choices"], serde_json::json!([]));
    }

    #[test]
    fn hop_is_read_and_removed_from_the_query() {
        assert_eq!(split_hop(""), (0, vec![]));
        assert_eq!(split_hop("a=1&hop=3&b=2"), (3, vec!["a=1", "b=2"]));
    }
}
