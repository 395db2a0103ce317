//! What every call does, as events: one `attempt` event per HTTP attempt and one `call` event
//! per finished call, delivered to listeners off the request path.
//!
//! A call only builds events when someone listens (a listener of its own, of its client's
//! configuration, or a process-wide one); otherwise this file costs one atomic load per call.
//! Events go through one bounded queue to one dispatcher thread, so a listener that is slow or
//! panics never delays or breaks a call: when the queue is full the event is dropped and
//! counted ([`dropped_events`]).

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

/// A function that receives events. It runs on the dispatcher thread, never on the caller's.
#[derive(Clone)]
pub struct Listener(Arc<dyn Fn(&Event) + Send + Sync>);

impl Listener {
    /// Wraps a function as a listener.
    pub fn new(f: impl Fn(&Event) + Send + Sync + 'static) -> Listener {
        Listener(Arc::new(f))
    }

    /// Hands it one event.
    pub fn call(&self, event: &Event) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listener")
    }
}

/// Events waiting for the dispatcher; beyond this, new events are dropped and counted.
pub const QUEUE_CAPACITY: usize = 4096;

/// Whether an event is about one HTTP attempt or one finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// One HTTP attempt (a request sent and its answer, or its failure).
    Attempt,
    /// One finished call: a completion, a stream (when it ends, fails or is aborted), the
    /// embeddings of all its batches, or the models list.
    Call,
}

/// Token counts, as the gateway reported them (`usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum, as reported (or computed when the gateway left it out).
    pub total_tokens: u64,
}

impl Usage {
    /// Reads a `usage` object; `None` when it holds no token count at all.
    pub fn from_value(v: &serde_json::Value) -> Option<Usage> {
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
        let (prompt, completion, total) = (
            n("prompt_tokens"),
            n("completion_tokens"),
            n("total_tokens"),
        );
        if prompt.is_none() && completion.is_none() && total.is_none() {
            return None;
        }
        let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total.unwrap_or(prompt + completion),
        })
    }

    /// Reads a `usage` object from its JSON text, without building a tree (every call does
    /// this for the statistics).
    pub(crate) fn from_json(text: &[u8]) -> Option<Usage> {
        #[derive(serde::Deserialize)]
        struct Counts {
            prompt_tokens: Option<u64>,
            completion_tokens: Option<u64>,
            total_tokens: Option<u64>,
        }
        let c: Counts = serde_json::from_slice(text).ok()?;
        if c.prompt_tokens.is_none() && c.completion_tokens.is_none() && c.total_tokens.is_none() {
            return None;
        }
        let (prompt, completion) = (
            c.prompt_tokens.unwrap_or(0),
            c.completion_tokens.unwrap_or(0),
        );
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: c.total_tokens.unwrap_or(prompt + completion),
        })
    }

    /// Adds another batch's counts (embeddings in several requests).
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// One event. Serialized, it is the object the Node and Python listeners receive (Node with
/// camelCase names).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `attempt` or `call`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// `chat`, `stream`, `embeddings` or `models`.
    pub operation: &'static str,
    /// The model asked for (for an attempt: the model that attempt sent, a fallback model
    /// included); `None` for the models list.
    pub model: Option<String>,
    /// The URL requested, without secret query values or a password.
    pub endpoint: String,
    /// For an attempt, its number in the call (1, 2, …); for a call, how many attempts it made.
    pub attempt: u32,
    /// Which of the endpoint's keys the attempt sent (0 = the first); never the key itself.
    pub key_index: Option<usize>,
    /// The HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// The error code of a failure (`None` when it succeeded).
    pub code: Option<&'static str>,
    /// The error's message (the words of the log line, no key in it).
    pub message: Option<String>,
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took, in milliseconds (for a stream's call event: until it ended).
    pub ms: f64,
    /// A stream's time to its first event carrying data, in milliseconds.
    pub ttft_ms: Option<f64>,
    /// The gateway's request id, when it sent one.
    pub request_id: Option<String>,
    /// The tokens the gateway reported (a stream's from its final chunk; embeddings summed).
    pub usage: Option<Usage>,
    /// For a failed attempt that is retried: the wait before the next one, in milliseconds.
    pub retry_delay_ms: Option<u64>,
}

impl Event {
    /// The event as JSON text (what the bindings hand to their languages).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

struct Registry {
    next_id: u64,
    listeners: Vec<(u64, Listener)>,
}

static GLOBAL: RwLock<Registry> = RwLock::new(Registry {
    next_id: 1,
    listeners: Vec::new(),
});
/// How many process-wide listeners there are: the one load a call makes when nobody listens.
static GLOBAL_COUNT: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn registry_write() -> std::sync::RwLockWriteGuard<'static, Registry> {
    GLOBAL.write().unwrap_or_else(PoisonError::into_inner)
}

/// Adds a process-wide listener (every call of every client); returns its id for
/// [`remove_event_listener`].
pub fn add_event_listener(listener: impl Fn(&Event) + Send + Sync + 'static) -> u64 {
    let listener = Listener::new(listener);
    let mut r = registry_write();
    let id = r.next_id;
    r.next_id += 1;
    r.listeners.push((id, listener));
    GLOBAL_COUNT.store(r.listeners.len(), Ordering::Release);
    id
}

/// Removes a process-wide listener; `false` when there was none with this id.
pub fn remove_event_listener(id: u64) -> bool {
    let mut r = registry_write();
    let before = r.listeners.len();
    r.listeners.retain(|(i, _)| *i != id);
    GLOBAL_COUNT.store(r.listeners.len(), Ordering::Release);
    r.listeners.len() != before
}

/// Whether any process-wide listener exists.
pub(crate) fn has_global_listeners() -> bool {
    GLOBAL_COUNT.load(Ordering::Acquire) > 0
}

/// Events dropped because the queue was full (since the process started).
pub fn dropped_events() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// One queued delivery: the event and the call's own listeners (its options' and its
/// configuration's), besides the process-wide ones.
struct Delivery {
    event: Event,
    own: [Option<Listener>; 2],
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Delivery>,
    /// Deliveries taken by the dispatcher and not yet finished (for [`flush_events`]).
    busy: usize,
}

struct Dispatcher {
    /// The process that started the thread: after `fork()` the child has no dispatcher thread
    /// and starts its own.
    pid: u32,
    queue: Mutex<Queue>,
    ready: Condvar,
    idle: Condvar,
}

static DISPATCHER: Mutex<Option<Arc<Dispatcher>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The dispatcher of this process, started on first use (again in a forked child).
fn dispatcher() -> Option<Arc<Dispatcher>> {
    let pid = std::process::id();
    let mut slot = lock(&DISPATCHER);
    if let Some(d) = slot.as_ref().filter(|d| d.pid == pid) {
        return Some(d.clone());
    }
    let d = Arc::new(Dispatcher {
        pid,
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
        idle: Condvar::new(),
    });
    let worker = d.clone();
    std::thread::Builder::new()
        .name("claw-llm-events".into())
        .spawn(move || run(&worker))
        .ok()?;
    // A parent's dispatcher is left alone in a child: dropping it could touch its locks.
    if let Some(old) = slot.replace(d.clone()) {
        std::mem::forget(old);
    }
    Some(d)
}

/// Queues `event` for the call's own listeners and the process-wide ones; never blocks.
pub(crate) fn emit(event: Event, own: [Option<Listener>; 2]) {
    let Some(d) = dispatcher() else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut q = lock(&d.queue);
    if q.items.len() >= QUEUE_CAPACITY {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // The dispatcher waits only once it emptied the queue: only the first event after that
    // needs to wake it (a futex call saved per event under load).
    let was_empty = q.items.is_empty();
    q.items.push_back(Delivery { event, own });
    drop(q);
    if was_empty {
        d.ready.notify_one();
    }
}

fn run(d: &Dispatcher) {
    loop {
        let delivery = {
            let mut q = lock(&d.queue);
            loop {
                if let Some(item) = q.items.pop_front() {
                    q.busy += 1;
                    break item;
                }
                q = d.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        deliver(&delivery);
        // The listeners it held go before the flush that waits for it returns.
        drop(delivery);
        let mut q = lock(&d.queue);
        q.busy -= 1;
        if q.items.is_empty() && q.busy == 0 {
            d.idle.notify_all();
        }
    }
}

fn deliver(delivery: &Delivery) {
    let global: Vec<Listener> = if has_global_listeners() {
        let r = GLOBAL.read().unwrap_or_else(PoisonError::into_inner);
        r.listeners.iter().map(|(_, l)| l.clone()).collect()
    } else {
        Vec::new()
    };
    for listener in delivery.own.iter().flatten().chain(global.iter()) {
        // A listener's panic is its own: the next listener and the next event still run.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            listener.call(&delivery.event)
        }));
    }
}

/// Waits until every event queued so far has been delivered, at most `timeout`; `true` when
/// the queue drained in time. Tests and short scripts call it before reading what listeners got.
pub fn flush_events(timeout: Duration) -> bool {
    let Some(d) = lock(&DISPATCHER)
        .clone()
        .filter(|d| d.pid == std::process::id())
    else {
        return true;
    };
    let q = lock(&d.queue);
    let (q, _) = d
        .idle
        .wait_timeout_while(q, timeout, |q| !q.items.is_empty() || q.busy > 0)
        .unwrap_or_else(PoisonError::into_inner);
    q.items.is_empty() && q.busy == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatcher is process-wide: these tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn event(n: u32) -> Event {
        Event {
            kind: EventType::Attempt,
            operation: "chat",
            model: Some("m".into()),
            endpoint: "http://127.0.0.1/v1/chat/completions".into(),
            attempt: n,
            key_index: None,
            status: Some(200),
            code: None,
            message: None,
            ok: true,
            ms: 1.0,
            ttft_ms: None,
            request_id: None,
            usage: None,
            retry_delay_ms: None,
        }
    }

    #[test]
    fn a_panicking_listener_does_not_stop_the_next_one() {
        let _turn = lock(&SERIAL);
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let boom = Listener::new(|_| panic!("listener bug"));
        let keep = Listener::new(move |e| lock(&seen).push(e.attempt));
        emit(event(1), [Some(boom.clone()), Some(keep.clone())]);
        emit(event(2), [Some(boom), Some(keep)]);
        assert!(flush_events(Duration::from_secs(5)));
        assert_eq!(*lock(&got), vec![1, 2]);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let _turn = lock(&SERIAL);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        // The first delivery blocks the dispatcher until the test lets it go.
        let stuck = Listener::new(move |_| {
            let _ = lock(&rx).recv_timeout(Duration::from_secs(10));
        });
        let before = dropped_events();
        let started = std::time::Instant::now();
        for n in 0..(QUEUE_CAPACITY as u32 + 50) {
            emit(event(n), [Some(stuck.clone()), None]);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "emit blocked");
        assert!(dropped_events() - before >= 49);
        for _ in 0..(QUEUE_CAPACITY + 50) {
            let _ = tx.send(());
        }
        assert!(flush_events(Duration::from_secs(10)));
    }

    #[test]
    fn event_json_names_the_fields_listeners_read() {
        let mut e = event(3);
        e.usage =
            Usage::from_value(&serde_json::json!({"prompt_tokens": 2, "completion_tokens": 5}));
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["type"], "attempt");
        assert_eq!(v["attempt"], 3);
        assert_eq!(v["usage"]["total_tokens"], 7);
    }
}
