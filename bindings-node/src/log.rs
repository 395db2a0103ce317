//! The core's log lines (docs/behaviour.md#logs-and-secrets), queued so that the JS layer writes them through
//! `console.error` when a call settles, before its promise rejects.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

/// Lines kept when nobody drains (a stream abandoned mid-way): the oldest are dropped.
const MAX_QUEUED: usize = 10_000;

static QUEUE: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Routes the core's log lines into the queue (once per process).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| claw_llm::set_log_sink(Some(Arc::new(|_level, line: &str| push(line)))));
}

/// Queues one line.
pub(crate) fn push(line: &str) {
    if let Ok(mut q) = QUEUE.lock() {
        if q.len() >= MAX_QUEUED {
            q.pop_front();
        }
        q.push_back(line.to_string());
        QUEUED.store(q.len(), Ordering::Release);
    }
}

/// Takes every queued line; `None` (without locking) when there is none.
pub(crate) fn drain() -> Option<Vec<String>> {
    if QUEUED.load(Ordering::Acquire) == 0 {
        return None;
    }
    let mut q = QUEUE.lock().ok()?;
    QUEUED.store(0, Ordering::Release);
    Some(q.drain(..).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded_and_drains() {
        for i in 0..MAX_QUEUED + 5 {
            push(&format!("line {i}"));
        }
        let lines = drain().unwrap_or_default();
        assert_eq!(lines.len(), MAX_QUEUED);
        assert_eq!(lines[0], "line 5");
        assert!(drain().is_none());
    }
}
