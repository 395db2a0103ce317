//! Core log lines into the `claw_llm` logger without any Rust thread taking the GIL.
//!
//! The core's sink only queues a line (a lock-free channel send, safe on a tokio worker); the
//! Python thread that settles a call drains the queue into the emitter the package installed
//! (`claw_llm._logging._emit`), which writes through `logging.getLogger("claw_llm")`.

use claw_llm::LogLevel;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

struct Queue {
    tx: Sender<(LogLevel, String)>,
    rx: Mutex<Receiver<(LogLevel, String)>>,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();
static PENDING: AtomicUsize = AtomicUsize::new(0);
static EMITTER: Mutex<Option<Py<PyAny>>> = Mutex::new(None);

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| {
        let (tx, rx) = channel();
        Queue {
            tx,
            rx: Mutex::new(rx),
        }
    })
}

/// Routes the core's log lines into the queue (once, at module import).
pub fn install_sink() {
    queue();
    claw_llm::set_log_sink(Some(Arc::new(|level, line: &str| push(level, line))));
}

/// Installs the Python function that receives `[(levelno, line), ...]`.
pub fn install_emitter(emitter: Py<PyAny>) {
    *EMITTER.lock().unwrap_or_else(PoisonError::into_inner) = Some(emitter);
}

/// Queues one line (any thread).
pub fn push(level: LogLevel, line: &str) {
    if queue().tx.send((level, line.to_string())).is_ok() {
        PENDING.fetch_add(1, Ordering::Release);
    }
}

/// Queues the line of a failed call when `level` lets errors through.
pub fn push_error(level: LogLevel, model: &str, err: &claw_llm::Error) {
    claw_llm::log_failure(level, model, err);
}

fn levelno(level: LogLevel) -> u8 {
    match level {
        LogLevel::Off => 0,
        LogLevel::Error => 40,
        LogLevel::Info => 20,
        LogLevel::Debug => 10,
    }
}

/// Writes the queued lines to the `claw_llm` logger (a Python thread, GIL held).
pub fn flush(py: Python<'_>) {
    if PENDING.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut lines = Vec::new();
    if let Ok(rx) = queue().rx.lock() {
        while let Ok((level, line)) = rx.try_recv() {
            PENDING.fetch_sub(1, Ordering::AcqRel);
            lines.push((levelno(level), line));
        }
    }
    if lines.is_empty() {
        return;
    }
    let emitter = EMITTER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|e| e.clone_ref(py));
    match emitter {
        Some(emit) => {
            if let Err(e) = emit.call1(py, (lines,)) {
                e.write_unraisable(py, None);
            }
        }
        None => {
            for (_, line) in lines {
                eprintln!("{line}");
            }
        }
    }
}
