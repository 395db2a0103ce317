//! A streamed chat completion seen from Python.
//!
//! Once the response head arrived, a pump task reads the stream ahead (up to [`READ_AHEAD`]
//! bytes of chunks) into a buffer that Python takes whole: one crossing of the language
//! boundary per batch, and no task spawn or thread hand-off at all when chunks are already
//! there. A sync reader that finds the buffer empty waits on a condvar with the GIL released
//! (in slices, for Ctrl-C); an asyncio reader leaves a [`Pending`] the pump completes through
//! the loop's notifier. Dropping or aborting the stream cancels the request.

use crate::errors::{guard, to_pyerr, Failure};
use crate::notify::{Handle, Notifier, Pending};
use crate::runtime;
use crate::task::{self, Outcome, TaskResult};
use crate::{lifecycle, logs};
use claw_llm::ChatStream;
use pyo3::prelude::*;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most chunks the pump takes from the core at once.
const BATCH: usize = 256;
/// The pump pauses while this many bytes of chunks wait unread.
const READ_AHEAD: usize = 1 << 20;
/// How long a sync read sleeps before looking at pending signals (Ctrl-C).
const SLICE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Buffer {
    chunks: Vec<String>,
    bytes: usize,
    /// How the stream ended: `Ok` at the end, the error once (then `Ok`).
    end: Option<Result<(), Failure>>,
    /// An asyncio read waiting for the next batch.
    waiter: Option<Pending>,
}

impl Buffer {
    /// The next batch (a JSON array text, `[]` at the end) or the stream's error, if ready.
    fn take(&mut self, space: &Notify) -> Option<TaskResult> {
        if !self.chunks.is_empty() {
            let mut joined = String::with_capacity(self.bytes + self.chunks.len() + 1);
            joined.push('[');
            for (i, c) in self.chunks.drain(..).enumerate() {
                if i > 0 {
                    joined.push(',');
                }
                joined.push_str(&c);
            }
            joined.push(']');
            self.bytes = 0;
            space.notify_one();
            return Some(Ok(Outcome::Batch(joined)));
        }
        match self.end.take()? {
            Ok(()) => {
                self.end = Some(Ok(()));
                Some(Ok(Outcome::Batch("[]".into())))
            }
            Err(f) => {
                self.end = Some(Ok(()));
                Some(Err(f))
            }
        }
    }
}

struct Shared {
    buffer: Mutex<Buffer>,
    ready: Condvar,
    /// Signals the pump that the reader made room.
    space: Notify,
    /// Asks the pump to let go of the stream (for `final_completion` mid-stream).
    yield_lock: Notify,
    stream: tokio::sync::Mutex<ChatStream>,
    abort: CancellationToken,
}

impl Shared {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a batch (or the end, or an error) from the pump to the reader.
    fn deliver(&self, read: claw_llm::Result<Vec<String>>) {
        let mut buf = self.buffer();
        match read {
            Ok(chunks) if chunks.is_empty() => buf.end = Some(Ok(())),
            Ok(chunks) => {
                buf.bytes += chunks.iter().map(String::len).sum::<usize>();
                buf.chunks.extend(chunks);
            }
            Err(e) => buf.end = Some(Err(Failure::Core(e))),
        }
        let waiter = buf.waiter.take();
        let batch = waiter.as_ref().and_then(|_| buf.take(&self.space));
        drop(buf);
        self.ready.notify_all();
        if let (Some(w), Some(b)) = (waiter, batch) {
            w.complete(b);
        }
    }

    async fn pump(self: Arc<Self>) {
        loop {
            loop {
                let room = self.space.notified();
                if self.buffer().bytes < READ_AHEAD || self.abort.is_cancelled() {
                    break;
                }
                tokio::select! {
                    _ = room => {}
                    _ = self.abort.cancelled() => {}
                }
            }
            let read = {
                let mut stream = self.stream.lock().await;
                tokio::select! {
                    biased;
                    _ = self.yield_lock.notified() => continue,
                    read = stream.next_batch_raw(BATCH) => read,
                }
            };
            let finished = read.as_ref().map_or(true, Vec::is_empty);
            self.deliver(read);
            if finished {
                return;
            }
        }
    }
}

/// The native side of `claw_llm.Stream` / `claw_llm.AsyncStream`.
#[pyclass(frozen, module = "claw_llm._native")]
pub struct NativeStream {
    shared: Arc<Shared>,
    request_id: Option<String>,
    status: u16,
    /// Where each attempt went before the stream opened (JSON; `None` without fallbacks).
    attempts_detail: Option<String>,
    /// The process whose runtime pumps this stream.
    pid: u32,
}

impl NativeStream {
    /// Wraps a started stream and starts its pump.
    pub fn start(stream: ChatStream) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::default()),
            ready: Condvar::new(),
            space: Notify::new(),
            yield_lock: Notify::new(),
            abort: stream.abort_handle(),
            stream: tokio::sync::Mutex::new(stream),
        });
        let (request_id, status, attempts_detail) = match shared.stream.try_lock() {
            Ok(s) => (
                s.request_id().map(str::to_string),
                s.status(),
                (!s.attempts_detail().is_empty())
                    .then(|| crate::errors::attempts_json(s.attempts_detail())),
            ),
            Err(_) => (None, 0, None),
        };
        runtime::get()?.spawn(shared.clone().pump());
        Ok(NativeStream {
            shared,
            request_id,
            status,
            attempts_detail,
            pid: std::process::id(),
        })
    }

    /// Whether this stream belongs to another process (it was opened before `fork()`): its
    /// pump and its locks live in the parent, so it must not be waited on or touched here.
    fn inherited(&self) -> bool {
        self.pid != std::process::id()
    }

    fn refuse_inherited(&self, py: Python<'_>) -> PyResult<()> {
        if self.inherited() {
            return Err(to_pyerr(py, Failure::Core(lifecycle::forked("stream"))));
        }
        Ok(())
    }
}

impl Drop for NativeStream {
    fn drop(&mut self) {
        if !self.inherited() {
            self.shared.abort.cancel();
        }
    }
}

#[pymethods]
impl NativeStream {
    /// The next chunks as the text of one JSON array; `"[]"` once the stream has ended.
    /// Waits with the GIL released; Ctrl-C aborts the stream.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.refuse_inherited(py)?;
        guard(py, || loop {
            let ready_now = self.shared.buffer().take(&self.shared.space);
            if let Some(r) = ready_now {
                logs::flush(py);
                return task::settle(py, r);
            }
            let shared = self.shared.clone();
            let ready = lifecycle::detach(py, move || {
                let buf = shared.buffer();
                let mut buf = shared
                    .ready
                    .wait_timeout_while(buf, SLICE, |b| b.chunks.is_empty() && b.end.is_none())
                    .map(|(b, _)| b)
                    .unwrap_or_else(|p| p.into_inner().0);
                buf.take(&shared.space)
            });
            if let Some(r) = ready {
                logs::flush(py);
                return task::settle(py, r);
            }
            if let Err(interrupt) = py.check_signals() {
                self.abort();
                return Err(interrupt);
            }
        })
    }

    /// The next batch if one is ready now (never waits), else `None`.
    fn try_next_batch(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.refuse_inherited(py)?;
        guard(py, || {
            let ready = self.shared.buffer().take(&self.shared.space);
            logs::flush(py);
            ready.map(|r| task::settle(py, r)).transpose()
        })
    }

    /// For asyncio: the next batch arrives through `notifier` under the handle's id.
    /// `handle.cancel()` aborts the stream.
    fn start_next_batch(&self, py: Python<'_>, notifier: &Notifier) -> PyResult<Handle> {
        self.refuse_inherited(py)?;
        guard(py, || {
            let (handle, pending) = notifier.pending(self.shared.abort.clone());
            let mut buf = self.shared.buffer();
            match buf.take(&self.shared.space) {
                Some(r) => {
                    drop(buf);
                    pending.complete(r);
                }
                None => {
                    if let Some(previous) = buf.waiter.replace(pending) {
                        previous.complete(Err(Failure::Core(claw_llm::Error::config(
                            "another read of this stream started before this one finished",
                        ))));
                    }
                }
            }
            Ok(handle)
        })
    }

    /// The completion accumulated so far (all of it once the stream ended), as JSON text.
    fn final_completion(&self, py: Python<'_>) -> PyResult<String> {
        self.refuse_inherited(py)?;
        guard(py, || {
            let value = match self.shared.stream.try_lock() {
                Ok(s) => s.final_completion(),
                Err(_) => {
                    let shared = self.shared.clone();
                    shared.yield_lock.notify_one();
                    lifecycle::detach(py, move || shared.stream.blocking_lock().final_completion())
                }
            };
            Ok(value.to_string())
        })
    }

    /// Aborts the request: the connection is closed; a pending read fails with `AbortError`.
    /// In a child of the process that opened it, this does nothing: the request is the parent's.
    fn abort(&self) {
        if self.inherited() {
            return;
        }
        self.shared.abort.cancel();
        if let Ok(mut s) = self.shared.stream.try_lock() {
            s.abort();
        }
    }

    /// Whether the stream ended (normally, by error or by abort) and everything was read.
    /// In a child of the process that opened it: `False`, without looking (see `abort`).
    fn is_finished(&self) -> bool {
        if self.inherited() {
            return false;
        }
        let buf = self.shared.buffer();
        buf.chunks.is_empty() && matches!(buf.end, Some(Ok(())))
    }

    #[getter]
    fn attempts_detail_json(&self) -> Option<String> {
        self.attempts_detail.clone()
    }

    #[getter]
    fn request_id(&self) -> Option<String> {
        self.request_id.clone()
    }

    #[getter]
    fn status(&self) -> u16 {
        self.status
    }
}
