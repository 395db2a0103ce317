//! The choice of endpoint, key and model for each attempt of a call (failover), and the rounds
//! of attempts under the call's deadline.
//!
//! A call's choices are every (model, endpoint, key) in that order: the requested model first,
//! then `fallbackModels`; the base URL first, then `LLM_FALLBACK_BASE_URLS`; `LLM_API_KEY`
//! first, then `LLM_API_KEYS` (fallback endpoints have one key each). A round tries them in
//! order:
//! - a 429 (or a quota error, or a 401/403 while the endpoint has another key) moves to the
//!   next key at once;
//! - any other retryable failure (connection failure before any byte, 408, 409, 5xx,
//!   `x-should-retry: true`) moves to the next endpoint, skipping the rest of this one's keys;
//!   a 404 whose words say the model does not exist does too;
//! - anything else (400, 422, a 401 on the endpoint's last key, a bad 2xx body) ends the call.
//!
//! Only when a round is exhausted does the call back off (the server's `Retry-After`, else
//! `min(0.5 s · 2^n, 8 s)` with jitter) and start another; `maxRetries` counts rounds. Choices
//! that failed for good (a quota error, a rejected key, a missing model) are not tried again.
//! Endpoints with an open breaker are skipped; when every endpoint is open the one that opened
//! first is tried. A stream is handed over once its head was checked, so nothing moves after
//! stream bytes reached the caller.

use crate::attempt::{self, Reply, Want};
use crate::breaker::{self, Breaker, Gate};
use crate::check::Kind;
use crate::config::{ApiKey, Config};
use crate::error::{AttemptDetail, Error, Result};
use crate::retry::{Failed, BASE_DELAY, MAX_DELAY};
use crate::url;
use bytes::Bytes;
use reqwest::header::{HeaderMap, AUTHORIZATION};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A fallback gateway: its URLs (derived by the same rules as the base URL) and its key.
#[derive(Clone)]
pub(crate) struct Fallback {
    pub base: String,
    pub chat_url: String,
    pub embeddings_url: String,
    pub models_url: String,
    pub key: ApiKey,
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback")
            .field("base", &url::redacted(&self.base))
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The failover part of a [`Config`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Routes {
    pub fallbacks: Vec<Fallback>,
    /// Keys of the base URL's gateway after the first (`LLM_API_KEYS`).
    pub extra_keys: Vec<ApiKey>,
    pub fallback_models: Vec<String>,
    pub breaker: breaker::Settings,
}

/// What the builder was given explicitly for failover.
#[derive(Clone, Debug, Default)]
pub(crate) struct Explicit {
    pub fallbacks: Option<Vec<(String, String)>>,
    pub api_keys: Option<Vec<String>>,
    pub fallback_models: Option<Vec<String>>,
    pub breaker_failures: Option<u32>,
    pub breaker_cooldown_ms: Option<u64>,
}

/// A comma-separated list, each entry trimmed (empty entries kept: keys are positional).
fn list(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).collect()
}

fn checked_key(key: String, name: &str) -> Result<ApiKey> {
    if key.chars().any(|c| c.is_control()) {
        return Err(Error::config(format!(
            "{name} contains control characters (the value is not shown)"
        )));
    }
    Ok(ApiKey::new(key))
}

/// The keys `LLM_API_KEYS` (or the `apiKeys` option) lists, in order, without empty entries.
pub(crate) fn listed_keys(
    explicit: &Explicit,
    get: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, Vec<String>)> {
    let (name, keys) = match &explicit.api_keys {
        Some(keys) => ("apiKeys".to_string(), keys.clone()),
        None => ("LLM_API_KEYS".to_string(), list(&get("LLM_API_KEYS")?)),
    };
    let keys: Vec<String> = keys
        .into_iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    (!keys.is_empty()).then_some((name, keys))
}

/// Resolves fallbacks, keys, models and breaker settings: explicit values, else the environment.
pub(crate) fn resolve(
    explicit: Explicit,
    get: &dyn Fn(&str) -> Option<String>,
    primary: &ApiKey,
) -> Result<Routes> {
    let mut extra_keys = Vec::new();
    if let Some((name, keys)) = listed_keys(&explicit, get) {
        for k in keys {
            let key = checked_key(k, &name)?;
            if &key != primary && !extra_keys.contains(&key) {
                extra_keys.push(key);
            }
        }
    }
    let (url_name, pairs) = match explicit.fallbacks {
        Some(pairs) => ("fallbacks", pairs),
        None => {
            let urls = get("LLM_FALLBACK_BASE_URLS").map(|v| list(&v));
            let keys = get("LLM_FALLBACK_API_KEYS")
                .map(|v| list(&v))
                .unwrap_or_default();
            let pairs = urls
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .filter(|(_, u)| !u.is_empty())
                .map(|(i, u)| (u, keys.get(i).cloned().unwrap_or_default()))
                .collect();
            ("LLM_FALLBACK_BASE_URLS", pairs)
        }
    };
    let mut fallbacks = Vec::with_capacity(pairs.len());
    for (base, key) in pairs {
        let base = base.trim().trim_end_matches('/').to_string();
        if base.is_empty() {
            return Err(Error::config(format!(
                "{url_name}: a fallback needs a base URL"
            )));
        }
        let key = key.trim().to_string();
        let key = if key.is_empty() {
            primary.clone()
        } else {
            checked_key(key, "LLM_FALLBACK_API_KEYS")?
        };
        fallbacks.push(Fallback {
            chat_url: url::endpoint(&base, url::Endpoint::Chat, url_name)?,
            embeddings_url: url::endpoint(&base, url::Endpoint::Embeddings, url_name)?,
            models_url: url::endpoint(&base, url::Endpoint::Models, url_name)?,
            base,
            key,
        });
    }
    let fallback_models = match explicit.fallback_models {
        Some(m) => m,
        None => get("LLM_FALLBACK_MODELS")
            .map(|v| list(&v))
            .unwrap_or_default(),
    }
    .into_iter()
    .map(|m| m.trim().to_string())
    .filter(|m| !m.is_empty())
    .collect();
    let number = |name: &str| -> Result<Option<u64>> {
        match get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                Error::config(format!("{name} must be a non-negative integer, got {v:?}"))
            }),
        }
    };
    let failures = match explicit.breaker_failures {
        Some(n) => n,
        None => number("LLM_BREAKER_FAILURES")?
            .map(|n| n.min(u32::MAX as u64) as u32)
            .unwrap_or(breaker::DEFAULT_BREAKER_FAILURES),
    };
    if failures == 0 {
        return Err(Error::config(
            "LLM_BREAKER_FAILURES must be a positive integer, got 0",
        ));
    }
    let cooldown = match explicit.breaker_cooldown_ms {
        Some(ms) => ms,
        None => number("LLM_BREAKER_COOLDOWN_MS")?.unwrap_or(breaker::DEFAULT_BREAKER_COOLDOWN_MS),
    };
    Ok(Routes {
        fallbacks,
        extra_keys,
        fallback_models,
        breaker: breaker::Settings {
            failures,
            cooldown: Duration::from_millis(cooldown),
        },
    })
}

/// One gateway a call may go to.
struct Endpoint<'a> {
    url: &'a str,
    parsed: Option<&'a reqwest::Url>,
    keys: Vec<&'a ApiKey>,
}

fn endpoints<'a>(
    cfg: &'a Config,
    kind: Kind,
    primary_url: Option<&'a reqwest::Url>,
) -> Vec<Endpoint<'a>> {
    let routes = cfg.routes();
    let mut keys = vec![cfg.api_key()];
    keys.extend(routes.extra_keys.iter());
    let mut out = vec![Endpoint {
        url: match kind {
            Kind::Chat => cfg.chat_url(),
            Kind::Embeddings => cfg.embeddings_url(),
            Kind::Models => cfg.models_url(),
        },
        parsed: primary_url,
        keys,
    }];
    out.extend(routes.fallbacks.iter().map(|f| Endpoint {
        url: match kind {
            Kind::Chat => &f.chat_url,
            Kind::Embeddings => &f.embeddings_url,
            Kind::Models => &f.models_url,
        },
        parsed: None,
        keys: vec![&f.key],
    }));
    out
}

/// The models a call may use: the requested one, then the fallbacks (not for the models list).
fn models<'a>(
    cfg: &'a Config,
    kind: Kind,
    model: &'a str,
    opt: Option<&'a [String]>,
) -> Vec<&'a str> {
    let mut out = vec![model];
    if kind != Kind::Models {
        let fallbacks = opt.unwrap_or(&cfg.routes().fallback_models);
        out.extend(fallbacks.iter().map(String::as_str).filter(|m| *m != model));
    }
    out
}

/// Whether a call has more than one choice. When it has not, the client keeps its direct
/// retry loop: no route is built and no breaker is looked at.
pub(crate) fn has_choices(cfg: &Config, kind: Kind, fallback_models: Option<&[String]>) -> bool {
    let r = cfg.routes();
    !r.fallbacks.is_empty()
        || !r.extra_keys.is_empty()
        || (kind != Kind::Models && !fallback_models.unwrap_or(&r.fallback_models).is_empty())
}

/// The process-wide breakers of a config's endpoints (base URL first).
pub(crate) fn breakers(cfg: &Config) -> Vec<Arc<Breaker>> {
    std::iter::once(cfg.base_url())
        .chain(cfg.routes().fallbacks.iter().map(|f| f.base.as_str()))
        .map(breaker::for_endpoint)
        .collect()
}

/// Everything one routed call needs.
pub(crate) struct Call<'a> {
    pub cfg: &'a Config,
    pub http: &'a reqwest::Client,
    pub kind: Kind,
    pub want: Want,
    /// The headers of the base URL's first key.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub model: &'a str,
    pub fallback_models: Option<&'a [String]>,
    pub primary_url: Option<&'a reqwest::Url>,
    pub max_retries: u32,
    pub deadline: Instant,
    /// The breakers of the config's endpoints (see [`breakers`]).
    pub breakers: &'a [Arc<Breaker>],
    /// The call's observers (events, span).
    pub obs: &'a crate::observe::CallObs,
}

/// Where a failure sends the call next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// The next choice (for a key problem: the next key of the same endpoint).
    NextKey,
    /// Skip the rest of this endpoint's keys.
    NextEndpoint,
    /// End the call with this error.
    Stop,
}

/// What a failure means for the route: where to go, whether another round may help, and
/// whether this choice is worth trying again.
fn judge(f: &Failed, more_keys: bool, kind: Kind) -> (Move, bool, bool) {
    let status = f.err.status();
    if f.retry {
        return if status == Some(429) {
            (Move::NextKey, true, false)
        } else {
            (Move::NextEndpoint, true, false)
        };
    }
    match (&f.err, status) {
        (Error::Http(_), Some(429)) => (Move::NextKey, false, true),
        (Error::Http(_), Some(401 | 403)) if more_keys => (Move::NextKey, false, true),
        (Error::Http(d), Some(404)) if kind != Kind::Models && model_missing(d) => {
            (Move::NextEndpoint, false, true)
        }
        _ => (Move::Stop, false, false),
    }
}

/// Whether a 404's words say the model does not exist (rather than the path).
pub(crate) fn model_missing(d: &crate::error::HttpErrorDetail) -> bool {
    if d.error_code.as_deref() == Some("model_not_found") {
        return true;
    }
    let words = format!("{} {}", d.summary, d.body).to_ascii_lowercase();
    words.contains("model")
        && [
            "not found",
            "does not exist",
            "not exist",
            "no such",
            "unknown",
            "not available",
        ]
        .iter()
        .any(|w| words.contains(w))
}

/// Whether a failure says the gateway itself is unwell (what a breaker counts).
fn unwell(f: &Failed) -> bool {
    match &f.err {
        Error::Connection { .. } => true,
        e => matches!(e.status(), Some(408 | 409 | 500..=599)),
    }
}

/// `body` with its `model` set to `model` (a fallback model).
fn with_model(body: &Bytes, model: &str) -> Result<Bytes> {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| Error::config(format!("the request cannot be re-encoded: {e}")))?;
    v.insert("model".into(), serde_json::Value::String(model.to_string()));
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| Error::config(format!("the request cannot be encoded as JSON: {e}")))
}

/// A jittered exponential delay before round `n + 1`: `min(0.5 s · 2^n, 8 s)` plus up to as much
/// again, capped at 8 s.
fn backoff(n: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = BASE_DELAY.saturating_mul(1u32 << n.min(16)).min(MAX_DELAY);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(n);
    let frac = (h.finish() % 1000) as f64 / 1000.0;
    base.mul_f64(1.0 + frac).min(MAX_DELAY)
}

/// Releases a half-open breaker's trial if the attempt never finished (cancelled, timed out).
struct TrialGuard<'a>(Option<&'a Breaker>);

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.0 {
            b.release_trial();
        }
    }
}

fn status_of(reply: &Reply) -> u16 {
    match reply {
        Reply::Body(raw) | Reply::Parsed(raw, _) => raw.status,
        Reply::Stream(resp) => resp.status().as_u16(),
    }
}

/// The attempts of a call that went through a route, kept with the reply.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trail(pub Vec<AttemptDetail>);

fn push(trail: &Mutex<Vec<AttemptDetail>>, d: AttemptDetail) {
    if let Ok(mut t) = trail.lock() {
        t.push(d);
    }
}

/// Runs the rounds of a routed call. Every attempt is appended to `trail`; the error of every
/// failed attempt is left in `failed_before` (a deadline that cuts the call short reports it).
pub(crate) async fn run(
    call: &Call<'_>,
    attempts: &AtomicU32,
    trail: &Mutex<Vec<AttemptDetail>>,
    failed_before: &Mutex<Option<Error>>,
    mut on_retry: impl FnMut(&Error, Duration),
) -> Result<Reply> {
    let cfg = call.cfg;
    let eps = endpoints(cfg, call.kind, call.primary_url);
    let models = models(cfg, call.kind, call.model, call.fallback_models);
    let mut bodies: Vec<Option<Bytes>> = vec![None; models.len()];
    bodies[0] = Some(call.body.clone());
    let choices: Vec<(usize, usize, usize)> = (0..models.len())
        .flat_map(|m| {
            let eps = &eps;
            (0..eps.len()).flat_map(move |e| (0..eps[e].keys.len()).map(move |k| (m, e, k)))
        })
        .collect();
    let mut dead = vec![false; choices.len()];
    let use_breakers = eps.len() > 1 && call.breakers.len() == eps.len();
    let settings = cfg.routes().breaker;
    let mut last: Option<Error> = None;

    for round in 0..=call.max_retries {
        let mut gates: Vec<Gate> = if use_breakers {
            call.breakers.iter().map(|b| b.gate(settings)).collect()
        } else {
            vec![Gate::Pass; eps.len()]
        };
        // Every endpoint open: try the one that opened first rather than fail without a request.
        let all_open = gates.iter().all(|g| matches!(g, Gate::Skip(_)));
        let mut forced = None;
        if all_open {
            forced = first_opened(&gates);
        }
        let mut retry_round = false;
        let mut attempted = false;
        let mut pass = 0;
        loop {
            let mut skip: Option<(usize, usize)> = None;
            let mut trial_lost = false;
            for (i, &(m, e, k)) in choices.iter().enumerate() {
                if dead[i] || skip == Some((m, e)) {
                    continue;
                }
                let is_forced = forced == Some(e);
                let mut guard = TrialGuard(None);
                if use_breakers && !is_forced {
                    match gates[e] {
                        Gate::Pass => {}
                        Gate::Skip(_) => continue,
                        Gate::Trial => {
                            if !call.breakers[e].start_trial(settings) {
                                gates[e] = Gate::Skip(std::time::Instant::now());
                                trial_lost = true;
                                continue;
                            }
                            guard.0 = Some(&call.breakers[e]);
                            // This call holds the trial: its other keys and models may follow.
                            gates[e] = Gate::Pass;
                        }
                    }
                }
                attempted = true;
                let ep = &eps[e];
                let body = match &bodies[m] {
                    Some(b) => b.clone(),
                    None => {
                        let b = with_model(&call.body, models[m])?;
                        bodies[m] = Some(b.clone());
                        b
                    }
                };
                let mut headers = call.headers.clone();
                if (e, k) != (0, 0) {
                    headers.insert(AUTHORIZATION, attempt::bearer(ep.keys[k])?);
                }
                let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
                let started = Instant::now();
                let tag = attempt::Tag {
                    key_index: Some(k),
                    model: (call.kind != Kind::Models).then_some(models[m]),
                };
                let result = attempt::send(
                    cfg, call.http, ep.url, ep.parsed, headers, body, call.kind, call.want, n,
                    call.obs, tag,
                )
                .await;
                let ms = started.elapsed().as_millis() as u64;
                let model = (call.kind != Kind::Models).then(|| models[m].to_string());
                let detail = |status: Option<u16>, code: Option<&'static str>| AttemptDetail {
                    endpoint: url::redacted(ep.url),
                    key_index: k,
                    model: model.clone(),
                    status,
                    code,
                    ms,
                };
                match result {
                    Ok(mut reply) => {
                        guard.0 = None;
                        if use_breakers {
                            call.breakers[e].success();
                        }
                        push(trail, detail(Some(status_of(&reply)), None));
                        let t = trail.lock().map(|t| t.clone()).unwrap_or_default();
                        match &mut reply {
                            Reply::Body(raw) | Reply::Parsed(raw, _) => raw.attempts_detail = t,
                            Reply::Stream(resp) => {
                                resp.extensions_mut().insert(Trail(t));
                            }
                        }
                        return Ok(reply);
                    }
                    Err(failed) => {
                        guard.0 = None;
                        if use_breakers {
                            if unwell(&failed) {
                                // Opened just now: the rest of this round leaves it alone
                                // (unless it is the one every other choice depends on).
                                if call.breakers[e].failure(settings) && forced != Some(e) {
                                    gates[e] = Gate::Skip(std::time::Instant::now());
                                }
                            } else {
                                call.breakers[e].success();
                            }
                        }
                        push(trail, detail(failed.err.status(), Some(failed.err.code())));
                        if let Ok(mut slot) = failed_before.lock() {
                            *slot = Some(failed.err.clone());
                        }
                        let more_keys = k + 1 < ep.keys.len();
                        let (mv, again, gone) = judge(&failed, more_keys, call.kind);
                        retry_round |= again;
                        dead[i] |= gone;
                        let mut err = failed.err;
                        if mv == Move::Stop {
                            err.set_attempts(attempts.load(Ordering::Relaxed));
                            return Err(err);
                        }
                        if mv == Move::NextEndpoint || !more_keys {
                            skip = Some((m, e));
                        }
                        last = Some(err);
                    }
                }
            }
            // Every endpoint was skipped because other calls hold the trials: go anyway.
            pass += 1;
            if attempted || !trial_lost || pass > 1 {
                break;
            }
            forced = first_opened(&gates);
        }
        let Some(err) = last.as_ref() else {
            break;
        };
        if !retry_round || round == call.max_retries {
            break;
        }
        let wait = err
            .detail()
            .and_then(|d| d.retry_after)
            .unwrap_or_else(|| backoff(round));
        // Never sleep past the deadline: give up now with this attempt's error instead.
        if Instant::now() + wait >= call.deadline {
            break;
        }
        on_retry(err, wait);
        tokio::time::sleep(wait).await;
    }
    let mut err = last.unwrap_or_else(|| Error::connection("no endpoint could be tried"));
    err.set_attempts(attempts.load(Ordering::Relaxed));
    Err(err)
}

/// The endpoint whose breaker opened first, among those skipped.
fn first_opened(gates: &[Gate]) -> Option<usize> {
    gates
        .iter()
        .enumerate()
        .filter_map(|(i, g)| match g {
            Gate::Skip(t) => Some((i, *t)),
            _ => None,
        })
        .min_by_key(|(_, t)| *t)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::tests::env;

    #[test]
    fn routes_from_env_are_positional_and_follow_the_url_rules() {
        let primary = ApiKey::new("k0".into());
        let r = resolve(
            Explicit::default(),
            &env(&[
                (
                    "LLM_FALLBACK_BASE_URLS",
                    "http://b:3000, https://dash/compatible-mode/v1/",
                ),
                ("LLM_FALLBACK_API_KEYS", ",k2"),
                ("LLM_API_KEYS", "k0,k1, k1"),
                ("LLM_FALLBACK_MODELS", "qwen-max, ,qwen-plus"),
                ("LLM_BREAKER_FAILURES", "3"),
            ]),
            &primary,
        )
        .unwrap();
        assert_eq!(r.fallbacks[0].chat_url, "http://b:3000/v1/chat/completions");
        assert_eq!(r.fallbacks[0].key.expose(), "k0");
        assert_eq!(
            r.fallbacks[1].chat_url,
            "https://dash/compatible-mode/v1/chat/completions"
        );
        assert_eq!(r.fallbacks[1].key.expose(), "k2");
        assert_eq!(r.extra_keys.len(), 1);
        assert_eq!(r.extra_keys[0].expose(), "k1");
        assert_eq!(r.fallback_models, ["qwen-max", "qwen-plus"]);
        assert_eq!(r.breaker.failures, 3);
        assert_eq!(r.breaker.cooldown, Duration::from_secs(30));
    }

    #[test]
    fn routes_reject_bad_values_naming_the_variable() {
        let primary = ApiKey::new("k".into());
        for (name, bad) in [
            ("LLM_FALLBACK_BASE_URLS", "ftp://x"),
            ("LLM_BREAKER_FAILURES", "0"),
            ("LLM_BREAKER_COOLDOWN_MS", "soon"),
        ] {
            let err = resolve(Explicit::default(), &env(&[(name, bad)]), &primary).unwrap_err();
            assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_404_is_a_missing_model_only_when_its_words_say_so() {
        let d = |body: &str| crate::error::http_detail(404, &HeaderMap::new(), body.as_bytes());
        assert!(model_missing(&d(r#"{"message":"Model not found"}"#)));
        assert!(model_missing(&d(
            r#"{"error":{"message":"The model `x` does not exist","code":"model_not_found"}}"#
        )));
        assert!(!model_missing(&d(r#"{"detail":"Not Found"}"#)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) >= BASE_DELAY && backoff(0) <= BASE_DELAY * 2);
        assert!(backoff(10) <= MAX_DELAY);
    }
}
