//! The client's log lines (docs/behaviour.md#logs-and-secrets) and where they go.
//!
//! By default lines go to stderr. Bindings install a sink so Node writes them through
//! `console.error` and Python through the `claw_llm` logger.

use crate::config::LogLevel;
use std::sync::{Arc, RwLock};

/// Receives every log line the client writes, with its level.
pub type LogSink = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

static SINK: RwLock<Option<LogSink>> = RwLock::new(None);

/// Sends log lines to `sink` instead of stderr (`None` restores stderr).
///
/// ```
/// use std::sync::Arc;
/// claw_llm::set_log_sink(Some(Arc::new(|_level, line: &str| println!("{line}"))));
/// claw_llm::set_log_sink(None);
/// ```
pub fn set_log_sink(sink: Option<LogSink>) {
    if let Ok(mut s) = SINK.write() {
        *s = sink;
    }
}

/// Writes `line` when `configured` lets `level` through.
pub(crate) fn emit(configured: LogLevel, level: LogLevel, line: &str) {
    if configured == LogLevel::Off || level > configured {
        return;
    }
    let sink = SINK.read().ok().and_then(|s| s.clone());
    match sink {
        Some(f) => f(level, line),
        None => eprintln!("{line}"),
    }
}

/// Writes the line of a failed call when `configured` lets errors through. A call cancelled by
/// its caller (`ABORT_ERR`) is not a failure worth a line. Bindings use it for errors they raise
/// before a client exists (bad arguments, bad environment).
pub fn log_failure(configured: LogLevel, model: &str, err: &crate::Error) {
    if !matches!(err, crate::Error::Aborted) {
        emit(configured, LogLevel::Error, &error_line(model, err));
    }
}

/// The line written once per failed call.
pub fn error_line(model: &str, err: &crate::Error) -> String {
    format!("[LLM_Client] Error calling {model}: {err}")
}
