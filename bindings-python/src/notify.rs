//! asyncio without any Rust task taking the GIL.
//!
//! Each event loop owns one [`Notifier`]: a socket pair whose read end the loop watches with
//! `loop.add_reader`, and a queue of finished results. A task that finishes pushes
//! `(id, result)` onto the queue and, when the queue was empty, writes one byte. The loop's
//! reader callback (a Python thread, GIL held) calls [`Notifier::drain`], which reads the
//! bytes first and then takes the queue, and resolves the asyncio futures by id. Two file
//! descriptors per loop, whatever the number of calls in flight.

use crate::errors::to_pyerr;
use crate::logs;
use crate::task::{self, TaskResult};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Inner {
    done: Mutex<Vec<(u64, TaskResult)>>,
    tx: UnixStream,
    rx: UnixStream,
}

impl Inner {
    fn complete(&self, id: u64, result: TaskResult) {
        let was_empty = {
            let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            done.push((id, result));
            done.len() == 1
        };
        if was_empty {
            // A full socket buffer already holds a wake-up byte: nothing is lost.
            let _ = (&self.tx).write(&[1]);
        }
    }
}

/// The completion queue of one asyncio event loop.
#[pyclass(frozen, module = "claw_llm._native")]
pub struct Notifier {
    inner: Arc<Inner>,
}

/// A result the notifier will deliver later, under its handle's id.
pub struct Pending {
    inner: Arc<Inner>,
    id: u64,
}

impl Pending {
    /// Queues the result and wakes the event loop (any thread; never touches Python).
    pub fn complete(self, result: TaskResult) {
        self.inner.complete(self.id, result);
    }
}

impl Notifier {
    /// A fresh id: the handle goes to Python, the pending side to whoever finishes the work.
    pub fn pending(&self, cancel: CancellationToken) -> (Handle, Pending) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        (
            Handle {
                id,
                cancel,
                pid: std::process::id(),
            },
            Pending {
                inner: self.inner.clone(),
                id,
            },
        )
    }

    /// Spawns `fut`; its result is queued under the returned handle's id.
    pub fn submit<F>(&self, py: Python<'_>, fut: F, cancel: CancellationToken) -> PyResult<Handle>
    where
        F: Future<Output = TaskResult> + Send + 'static,
    {
        let (handle, pending) = self.pending(cancel);
        task::spawn(fut, move |r| pending.complete(r)).map_err(|f| to_pyerr(py, f))?;
        Ok(handle)
    }
}

#[pymethods]
impl Notifier {
    /// Fails with `LLM_CONNECTION_ERROR` (never a bare `OSError`) when the socket pair cannot
    /// be made, e.g. when the process has no file descriptor left (EMFILE).
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let no_socket = |e: std::io::Error| {
            let message = format!("cannot open the socket pair that wakes the asyncio loop: {e}");
            to_pyerr(py, claw_llm::Error::connection(message).into())
        };
        let (tx, rx) = UnixStream::pair().map_err(no_socket)?;
        tx.set_nonblocking(true).map_err(no_socket)?;
        rx.set_nonblocking(true).map_err(no_socket)?;
        Ok(Notifier {
            inner: Arc::new(Inner {
                done: Mutex::new(Vec::new()),
                tx,
                rx,
            }),
        })
    }

    /// The file descriptor to watch with `loop.add_reader`.
    fn fileno(&self) -> i32 {
        self.inner.rx.as_raw_fd()
    }

    /// The results finished since the last call, as `[(id, ok, value_or_exception), ...]`.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let _active = crate::lifecycle::enter(py);
        let mut buf = [0u8; 256];
        loop {
            match (&self.inner.rx).read(&mut buf) {
                Ok(n) if n == buf.len() => continue,
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let done = std::mem::take(
            &mut *self
                .inner
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        logs::flush(py);
        let out = PyList::empty(py);
        for (id, result) in done {
            match task::settle(py, result) {
                Ok(v) => out.append((id, true, v))?,
                Err(e) => out.append((id, false, e.into_value(py)))?,
            }
        }
        Ok(out)
    }
}

/// One async operation in flight: its id in the notifier's results, and its cancellation.
#[pyclass(frozen, module = "claw_llm._native")]
pub struct Handle {
    id: u64,
    cancel: CancellationToken,
    /// The process whose runtime runs the operation.
    pid: u32,
}

#[pymethods]
impl Handle {
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// Aborts the operation (the connection is closed; the result becomes `AbortError`).
    /// In a child of the process that started it, this does nothing: the request is the parent's.
    fn cancel(&self) {
        if self.pid != std::process::id() {
            return;
        }
        self.cancel.cancel();
    }
}
