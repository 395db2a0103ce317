//! The core's log lines (docs/behaviour.md#logs-and-secrets), queued so that the JS layer writes them through
//! `console.error` when a call settles, before its promise rejects.
//!
//! Each JS environment has its own queue (see `runtime.rs`): every call runs under a log sink
//! of its environment's queue (`claw_llm::with_log_sink`), so a worker prints only its own
//! calls' lines.

use claw_llm::LogSink;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Lines kept when nobody drains (a stream abandoned mid-way): the oldest are dropped.
const MAX_QUEUED: usize = 10_000;

/// The queued lines of one environment.
#[derive(Default)]
pub(crate) struct LogQueue {
    lines: Mutex<VecDeque<String>>,
    queued: AtomicUsize,
}

impl LogQueue {
    /// Queues one line (any thread).
    pub(crate) fn push(&self, line: &str) {
        if let Ok(mut q) = self.lines.lock() {
            if q.len() >= MAX_QUEUED {
                q.pop_front();
            }
            q.push_back(line.to_string());
            self.queued.store(q.len(), Ordering::Release);
        }
    }

    /// Takes every queued line; `None` (without locking) when there is none.
    pub(crate) fn drain(&self) -> Option<Vec<String>> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.lines.lock().ok()?;
        self.queued.store(0, Ordering::Release);
        Some(q.drain(..).collect())
    }

    /// The sink a call of this environment runs under (`claw_llm::with_log_sink`).
    pub(crate) fn sink(self: &Arc<Self>) -> LogSink {
        let queue = self.clone();
        Arc::new(move |_level, line: &str| queue.push(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded_and_drains() {
        let q = LogQueue::default();
        for i in 0..MAX_QUEUED + 5 {
            q.push(&format!("line {i}"));
        }
        let lines = q.drain().unwrap_or_default();
        assert_eq!(lines.len(), MAX_QUEUED);
        assert_eq!(lines[0], "line 5");
        assert!(q.drain().is_none());
    }
}
