//! The edges of a process's life: interpreter exit and `fork()`.
//!
//! **Exit.** Once CPython finalizes, a thread that takes the GIL back is ended with
//! `pthread_exit` (CPython gh-87135), whose forced unwind cannot pass the panic guards on a
//! Rust stack: glibc aborts the whole process. So a thread waiting with the GIL released never
//! takes it back once the interpreter is exiting: it parks until the process ends. The
//! package's `atexit` hook ([`_at_exit`]) runs before finalization, on the exiting thread:
//! it cancels every request in flight, flags the exit, and lets go of the GIL until no other
//! thread is inside the native module except parked ones. A thread counts itself in when it
//! enters the module ([`enter`]) and out when it leaves or parks, and checks the flag after
//! counting itself in: either the hook sees it counted and waits for it, or it sees the flag
//! and parks. A thread that sees the flag on entry, or when its wait ends, parks for good with
//! the GIL released (before any Rust frame could be on its stack while Python ends threads).
//! The package's event pump waits here too; the hook wakes it so it parks at once.
//!
//! **Fork.** Requests run on the parent's runtime; a child inherits their memory but not the
//! threads that would finish them. Every token handed out here belongs to one pid, and objects
//! opened before `fork()` answer with [`forked`] in a child instead of waiting forever.

use pyo3::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Set by [`at_exit`]: no thread but the exiting one may take the GIL back.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Threads inside the native module (outermost entry points), parked ones not counted.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The parent of every call's cancellation token in this process, cancelled at exit.
static SHUTDOWN: Mutex<Option<(u32, CancellationToken)>> = Mutex::new(None);

/// How long the exit hook waits for the threads still inside the module to park or leave.
const EXIT_GRACE: Duration = Duration::from_secs(2);

thread_local! {
    static EXIT_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Entry points of the module on this thread's stack.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Whether the interpreter is exiting (the exit hook ran): waits that would end by
/// themselves later stop waiting, so their thread parks now.
pub fn exiting() -> bool {
    EXITING.load(Ordering::SeqCst)
}

fn must_park() -> bool {
    EXITING.load(Ordering::SeqCst) && !EXIT_THREAD.with(Cell::get)
}

/// Counts this thread in the native module until the guard drops; every entry point holds one.
/// Once the interpreter is exiting, a thread other than the exiting one parks here instead.
pub fn enter(py: Python<'_>) -> Active {
    if DEPTH.with(|d| d.replace(d.get() + 1)) == 0 {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        if must_park() {
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
            py.detach(|| park_forever());
        }
    }
    Active(())
}

/// A thread's presence in the native module (see [`enter`]).
pub struct Active(());

impl Drop for Active {
    fn drop(&mut self) {
        if DEPTH.with(|d| d.replace(d.get().saturating_sub(1))) == 1 {
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A cancellation token for one call, cancelled when the interpreter exits. Called with the
/// GIL held (so never concurrently with a `fork()`, which Python performs holding it).
pub fn call_token() -> CancellationToken {
    let pid = std::process::id();
    let mut slot = SHUTDOWN.lock().unwrap_or_else(PoisonError::into_inner);
    match slot.as_ref() {
        Some((owner, token)) if *owner == pid => token.child_token(),
        _ => {
            // A child must not touch the parent's token tree (its lock may be held by a
            // thread that does not exist here): the inherited one is leaked.
            let token = CancellationToken::new();
            if let Some(inherited) = slot.replace((pid, token.clone())) {
                std::mem::forget(inherited);
            }
            token.child_token()
        }
    }
}

/// Runs `f` with the GIL released, like `py.detach`, but never takes the GIL back on a thread
/// other than the exiting one once the interpreter is exiting: that thread parks for good
/// (counted out of [`ACTIVE`], so the exit hook does not wait for it).
pub fn detach<T, F>(py: Python<'_>, f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let _active = enter(py);
    py.detach(move || {
        let out = f();
        if must_park() {
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
            park_forever();
        }
        out
    })
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The message of a stream, call or client used in a child of the process that opened it.
pub fn forked(what: &str) -> claw_llm::Error {
    claw_llm::Error::config(format!(
        "this {what} was opened before fork() in another process; open a new one in this process"
    ))
}

/// `atexit` hook (registered by `claw_llm/__init__.py`): cancels every request in flight and
/// keeps threads still waiting on one from taking the GIL back during finalization.
#[pyfunction]
pub fn _at_exit(py: Python<'_>) {
    EXIT_THREAD.with(|t| t.set(true));
    EXITING.store(true, Ordering::SeqCst);
    crate::events::wake();
    let pid = std::process::id();
    if let Some((owner, token)) = SHUTDOWN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        if *owner == pid {
            token.cancel();
        }
    }
    py.detach(|| {
        let start = Instant::now();
        while ACTIVE.load(Ordering::SeqCst) > 0 && start.elapsed() < EXIT_GRACE {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// `os.register_at_fork(after_in_child=…)` hook: the threads counted inside the module stayed
/// in the parent (the forking thread itself is in Python, not in the module).
#[pyfunction]
pub fn _after_fork_in_child() {
    ACTIVE.store(0, Ordering::SeqCst);
}
