//! Running core futures on the runtime and handing their outcome back to Python.
//!
//! A task never touches Python: it finishes by storing its outcome where a Python thread picks
//! it up — a [`Slot`] a sync call waits on (GIL released, in short slices so Ctrl-C is seen),
//! or an asyncio [`crate::notify::Notifier`].

use crate::convert;
use crate::errors::{panic_message, to_pyerr, Failure};
use crate::lifecycle;
use crate::runtime;
use crate::stream::NativeStream;
use claw_llm::ChatStream;
use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use serde_json::Value;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a finished task hands to Python.
pub enum Outcome {
    /// A checked JSON body, parsed off the GIL.
    Json(Value),
    /// The same, from a call that had fallbacks: Python gets `(dict, attempts detail JSON)`.
    Traced(Value, String),
    /// A started stream.
    Stream(Box<ChatStream>),
    /// Embedding vectors.
    Vectors(Vec<Vec<f32>>),
    /// Raw chunks of a stream, joined as one JSON array text (`[]` at the end).
    Batch(String),
}

pub type TaskResult = Result<Outcome, Failure>;

impl Outcome {
    pub fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Outcome::Json(v) => convert::to_py(py, &v)?.unbind(),
            Outcome::Traced(v, detail) => {
                let value = convert::to_py(py, &v)?;
                pyo3::types::PyTuple::new(
                    py,
                    [value.into_any(), PyString::new(py, &detail).into_any()],
                )?
                .into_any()
                .unbind()
            }
            Outcome::Stream(s) => Py::new(py, NativeStream::start(*s)?)?.into_any(),
            Outcome::Vectors(v) => PyList::new(py, v)?.into_any().unbind(),
            Outcome::Batch(s) => PyString::new(py, &s).into_any().unbind(),
        })
    }
}

/// Converts a finished task's result into the Python value or exception.
pub fn settle(py: Python<'_>, result: TaskResult) -> PyResult<Py<PyAny>> {
    match result {
        Ok(o) => o.into_py(py),
        Err(f) => Err(to_pyerr(py, f)),
    }
}

/// Spawns `fut` on the process runtime; `done` receives its result, or the text of its panic.
pub fn spawn<F>(fut: F, done: impl FnOnce(TaskResult) + Send + 'static) -> Result<(), Failure>
where
    F: Future<Output = TaskResult> + Send + 'static,
{
    let rt = runtime::get().map_err(|e| {
        Failure::Core(claw_llm::Error::config(format!(
            "cannot start the claw-llm runtime: {e}"
        )))
    })?;
    // A combinator, not an `async` block awaiting `fut`: that would store the call's future
    // twice (captured, and awaited), doubling what the spawn copies.
    rt.spawn(AssertUnwindSafe(fut).catch_unwind().map(move |r| {
        done(match r {
            Ok(r) => r,
            Err(payload) => Err(Failure::Panic(panic_message(&*payload))),
        })
    }));
    Ok(())
}

/// A one-value rendezvous between a task and the Python thread waiting for it.
#[derive(Default)]
pub struct Slot {
    value: Mutex<Option<TaskResult>>,
    ready: Condvar,
}

impl Slot {
    pub fn put(&self, r: TaskResult) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        self.ready.notify_all();
    }

    fn wait(&self, timeout: Duration) -> Option<TaskResult> {
        let guard = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut guard, _) = self
            .ready
            .wait_timeout_while(guard, timeout, |v| v.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.take()
    }
}

/// How long a sync wait sleeps before looking at pending signals (Ctrl-C).
const SLICE: Duration = Duration::from_millis(50);

/// Runs `fut` to completion for a sync call: the GIL is released while waiting; every
/// [`SLICE`] the GIL is taken back to run signal handlers, and when one raises (e.g.
/// `KeyboardInterrupt`) `cancel` is triggered and that exception propagates.
pub fn block_on<F>(py: Python<'_>, fut: F, cancel: &CancellationToken) -> PyResult<TaskResult>
where
    F: Future<Output = TaskResult> + Send + 'static,
{
    let slot = Arc::new(Slot::default());
    let target = slot.clone();
    if let Err(f) = spawn(fut, move |r| target.put(r)) {
        return Ok(Err(f));
    }
    loop {
        let waiting = slot.clone();
        if let Some(r) = lifecycle::detach(py, move || waiting.wait(SLICE)) {
            return Ok(r);
        }
        if let Err(interrupt) = py.check_signals() {
            cancel.cancel();
            return Err(interrupt);
        }
    }
}
