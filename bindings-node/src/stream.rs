//! The native half of a stream: chunks cross into JS in batches of raw JSON text.

use crate::error::{self, to_js};
use crate::runtime;
use claw_llm::{CancellationToken, ChatStream};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use std::sync::{Arc, Weak};
use tokio::sync::Mutex;

/// A streamed chat completion. `index.js` wraps it in an async iterable.
#[napi]
pub struct NativeStream {
    inner: Arc<Mutex<ChatStream>>,
    abort: CancellationToken,
    request_id: Option<String>,
    status: u16,
    /// The attempts before the stream opened, as JSON (`None` without fallbacks).
    attempts_detail: Option<String>,
}

impl NativeStream {
    /// Wraps a started stream. Its abort token descends from the call's, so it fires when the
    /// JS environment is torn down; then a stream nobody is reading (no read would see the
    /// token) is closed by a watcher task, which ends with the stream.
    pub(crate) fn new(s: ChatStream) -> Self {
        let abort = s.abort_handle();
        let stream = NativeStream {
            abort: abort.clone(),
            request_id: s.request_id().map(str::to_string),
            status: s.status(),
            attempts_detail: (!s.attempts_detail().is_empty())
                .then(|| crate::error::attempts_json(s.attempts_detail()).to_string()),
            inner: Arc::new(Mutex::new(s)),
        };
        let inner: Weak<Mutex<ChatStream>> = Arc::downgrade(&stream.inner);
        // Only fails if the runtime cannot be built, and then this stream is not running on it.
        let _ = runtime::spawn(async move {
            abort.cancelled().await;
            if let Some(inner) = inner.upgrade() {
                inner.lock().await.abort();
            }
        });
        stream
    }
}

impl Drop for NativeStream {
    /// Collected by JS: the request is over (this also ends the watcher task).
    fn drop(&mut self) {
        self.abort.cancel();
    }
}

#[napi]
impl NativeStream {
    /// Where each attempt went before the stream opened (JSON), when the call had fallbacks.
    #[napi(getter)]
    pub fn attempts_detail_json(&self) -> Option<String> {
        self.attempts_detail.clone()
    }

    /// The gateway's request id (`x-request-id`), when it sent one.
    #[napi(getter)]
    pub fn request_id(&self) -> Option<String> {
        self.request_id.clone()
    }

    /// The HTTP status of the stream's response.
    #[napi(getter)]
    pub fn status(&self) -> u32 {
        u32::from(self.status)
    }

    /// Up to `max` chunks as raw JSON text, waiting only when none is ready; `[]` at the end.
    #[napi]
    pub fn next_batch<'e>(
        &self,
        env: &'e Env,
        max: u32,
    ) -> napi::Result<PromiseRaw<'e, Vec<String>>> {
        let inner = self.inner.clone();
        runtime::promise(
            env,
            error::guard(async move {
                let mut s = inner.lock().await;
                s.next_batch_raw(max as usize).await.map_err(|e| to_js(&e))
            }),
        )
    }

    /// The completion accumulated so far (all of it once the stream ended), as JSON text.
    #[napi]
    pub fn final_completion<'e>(&self, env: &'e Env) -> napi::Result<PromiseRaw<'e, String>> {
        let inner = self.inner.clone();
        runtime::promise(
            env,
            error::guard(async move { Ok(inner.lock().await.final_completion().to_string()) }),
        )
    }

    /// Aborts: the connection is closed and a pending or later read fails with `ABORT_ERR`.
    #[napi]
    pub fn abort(&self) {
        self.abort.cancel();
        // A pending read sees the cancellation itself; otherwise close the connection now.
        if let Ok(mut s) = self.inner.try_lock() {
            s.abort();
        }
    }
}
