//! The one tokio runtime of the process, re-created in a child after `fork()`.
//!
//! A forked child inherits the runtime's memory but none of its worker threads, so the old
//! runtime can neither run tasks nor be dropped (dropping waits for threads that do not exist):
//! it is leaked and a fresh one is built. The core rebuilds its HTTP pools per pid the same way.

use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::Runtime;

static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The runtime of this process. Called with the GIL held, so a `fork()` (which Python performs
/// holding the GIL) never happens while another thread is inside this lock.
pub fn get() -> std::io::Result<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    // One worker: Python threads (one at a time, under the GIL) are the only producers of calls,
    // and one worker keeps up with them; each further worker only adds cross-thread wake-ups
    // that cost more CPU per call than they save (measured in tests/bench, see BENCHMARKS.md).
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("claw-llm")
            .enable_all()
            .build()?,
    );
    if let Some((_, inherited)) = slot.replace((pid, rt.clone())) {
        std::mem::forget(inherited);
    }
    Ok(rt)
}
