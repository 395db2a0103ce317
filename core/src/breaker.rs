//! Circuit breakers, one per gateway endpoint, shared by the whole process (the free functions
//! and every client naming the same endpoint see the same breaker).
//!
//! After `LLM_BREAKER_FAILURES` (default 5) consecutive failures an endpoint is *open*: calls
//! skip it for `LLM_BREAKER_COOLDOWN_MS` (default 30000). Then it is *half-open*: one call is
//! let through as a trial, and its outcome closes the breaker again or re-opens it. A failure
//! is what says the gateway itself is unwell: a connection failure, 408, 409 or a 5xx. An
//! answer such as 400, 401, 404 or 429 means the gateway is up, so it counts as a success.
//!
//! Breakers are only consulted when a call has somewhere else to go (fallback endpoints): with
//! one endpoint there is nothing to skip to, so the single-gateway path never takes a lock here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Default consecutive failures that open a breaker (`LLM_BREAKER_FAILURES`).
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// Default time an open breaker keeps its endpoint skipped (`LLM_BREAKER_COOLDOWN_MS`).
pub const DEFAULT_BREAKER_COOLDOWN_MS: u64 = 30_000;

/// How a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub failures: u32,
    pub cooldown: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            failures: DEFAULT_BREAKER_FAILURES,
            cooldown: Duration::from_millis(DEFAULT_BREAKER_COOLDOWN_MS),
        }
    }
}

/// The phase of one endpoint's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Calls go through.
    Closed,
    /// Calls skip the endpoint until the cooldown has passed.
    Open,
    /// The cooldown has passed: the next call is a trial that decides.
    HalfOpen,
}

impl Phase {
    /// `closed`, `open` or `half_open` (the same strings in every language).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half_open",
        }
    }
}

/// What one endpoint's breaker looks like now (`Client::breaker_state`, `breakerState()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerState {
    /// The endpoint's base URL, without secret query values or a password.
    pub endpoint: String,
    /// Its phase.
    pub phase: Phase,
    /// Consecutive failures counted since the last success.
    pub failures: u32,
    /// How long ago it (last) opened, while it is open or half-open.
    pub opened_ms_ago: Option<u64>,
    /// How many times it opened since the process started.
    pub opens: u64,
}

#[derive(Debug, Default)]
struct Inner {
    failures: u32,
    opened_at: Option<Instant>,
    trial_started: Option<Instant>,
    opens: u64,
}

/// One endpoint's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    endpoint: String,
    inner: Mutex<Inner>,
}

/// Whether a call may try the endpoint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Closed: go.
    Pass,
    /// Half-open and no trial running: this call may become the trial.
    Trial,
    /// Open (cooling down, or a trial is already running): skip it. Holds when it opened.
    Skip(Instant),
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the breaker stands for a call starting now.
    pub fn gate(&self, s: Settings) -> Gate {
        let g = self.lock();
        let Some(opened) = g.opened_at else {
            return Gate::Pass;
        };
        let now = Instant::now();
        let trial_running = g
            .trial_started
            .is_some_and(|t| now.duration_since(t) < s.cooldown.max(Duration::from_secs(1)));
        if now.duration_since(opened) < s.cooldown || trial_running {
            Gate::Skip(opened)
        } else {
            Gate::Trial
        }
    }

    /// Claims the trial of a half-open breaker; `false` when another call got it first.
    pub fn start_trial(&self, s: Settings) -> bool {
        if self.gate(s) != Gate::Trial {
            return false;
        }
        self.lock().trial_started = Some(Instant::now());
        true
    }

    /// The endpoint answered like a healthy gateway.
    pub fn success(&self) {
        let mut g = self.lock();
        g.failures = 0;
        g.opened_at = None;
        g.trial_started = None;
    }

    /// The endpoint failed like an unwell gateway; `true` when this opened (or re-opened) it.
    pub fn failure(&self, s: Settings) -> bool {
        let mut g = self.lock();
        g.failures = g.failures.saturating_add(1);
        let trial = g.trial_started.take().is_some();
        if trial || (g.opened_at.is_none() && g.failures >= s.failures.max(1)) {
            g.opened_at = Some(Instant::now());
            g.opens += 1;
            return true;
        }
        false
    }

    /// A trial that ended without an answer either way (the call was cancelled or timed out):
    /// the next call may try again.
    pub fn release_trial(&self) {
        self.lock().trial_started = None;
    }

    /// The breaker's state now.
    pub fn state(&self, s: Settings) -> BreakerState {
        let g = self.lock();
        let now = Instant::now();
        let phase = match g.opened_at {
            None => Phase::Closed,
            Some(t) if now.duration_since(t) < s.cooldown => Phase::Open,
            Some(_) => Phase::HalfOpen,
        };
        BreakerState {
            endpoint: self.endpoint.clone(),
            phase,
            failures: g.failures,
            opened_ms_ago: g
                .opened_at
                .map(|t| now.duration_since(t).as_millis() as u64),
            opens: g.opens,
        }
    }
}

type Registry = Mutex<HashMap<String, Arc<Breaker>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// The process-wide breaker of the endpoint whose base URL is `base`.
pub(crate) fn for_endpoint(base: &str) -> Arc<Breaker> {
    let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(base.to_string())
        .or_insert_with(|| {
            Arc::new(Breaker {
                endpoint: crate::url::redacted(base),
                inner: Mutex::default(),
            })
        })
        .clone()
}

/// Every breaker of the process, in endpoint order, judged with this cooldown (bindings pass
/// their language's `LLM_BREAKER_COOLDOWN_MS`).
pub fn states_with_cooldown(cooldown: Duration) -> Vec<BreakerState> {
    all(Settings {
        cooldown,
        ..Settings::default()
    })
}

fn all(s: Settings) -> Vec<BreakerState> {
    let breakers: Vec<Arc<Breaker>> = registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .cloned()
        .collect();
    let mut states: Vec<BreakerState> = breakers.iter().map(|b| b.state(s)).collect();
    states.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
    states
}

/// Every endpoint breaker the process has seen (with the environment's cooldown). The state of
/// a client's own endpoints is [`crate::Client::breaker_state`].
pub fn breaker_state() -> Vec<BreakerState> {
    let cooldown = std::env::var("LLM_BREAKER_COOLDOWN_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_BREAKER_COOLDOWN_MS);
    all(Settings {
        cooldown: Duration::from_millis(cooldown),
        ..Settings::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker {
            endpoint: "http://h".into(),
            inner: Mutex::default(),
        }
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_a_success_resets() {
        let s = Settings {
            failures: 3,
            cooldown: Duration::from_secs(60),
        };
        let b = breaker();
        assert!(!b.failure(s));
        assert!(!b.failure(s));
        b.success();
        assert!(!b.failure(s));
        assert!(!b.failure(s));
        assert_eq!(b.gate(s), Gate::Pass);
        assert!(b.failure(s));
        assert!(matches!(b.gate(s), Gate::Skip(_)));
        let st = b.state(s);
        assert_eq!((st.phase, st.failures, st.opens), (Phase::Open, 3, 1));
    }

    #[test]
    fn breaker_half_open_lets_one_trial_through() {
        let s = Settings {
            failures: 1,
            cooldown: Duration::ZERO,
        };
        let b = breaker();
        assert!(b.failure(s));
        assert_eq!(b.gate(s), Gate::Trial);
        assert!(b.start_trial(s));
        assert!(!b.start_trial(s), "a second trial while one runs");
        // The trial fails: open again.
        assert!(b.failure(s));
        assert_eq!(b.state(s).opens, 2);
        assert!(b.start_trial(s));
        b.success();
        assert_eq!(b.state(s).phase, Phase::Closed);
        assert_eq!(b.gate(s), Gate::Pass);
    }

    #[test]
    fn breaker_released_trial_can_be_taken_again() {
        let s = Settings {
            failures: 1,
            cooldown: Duration::ZERO,
        };
        let b = breaker();
        b.failure(s);
        assert!(b.start_trial(s));
        b.release_trial();
        assert!(b.start_trial(s));
    }
}
