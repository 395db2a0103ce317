//! The native half of `options.signal`: one cancellation token per call.

use claw_llm::CancellationToken;
use napi_derive::napi;

/// Cancels the call (and its stream) it was passed to. `index.js` creates one per call that
/// has a `signal` and calls [`CancelHandle::cancel`] from the signal's `abort` event.
/// The handle's token descends from its JS environment's, so tearing the environment down
/// cancels it too.
#[napi]
pub struct CancelHandle {
    pub(crate) token: CancellationToken,
}

#[napi]
impl CancelHandle {
    /// A handle that is not cancelled yet.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        CancelHandle {
            token: crate::runtime::call_token(),
        }
    }

    /// Cancels: the pending call or stream read fails with `ABORT_ERR`.
    #[napi]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}
