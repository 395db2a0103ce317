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

tokio::task_local! {
    static CALL_SINK: LogSink;
}

/// Runs `fut` (one call, or one read of a stream) with its log lines going to `sink` instead of
/// the process-wide sink: a binding with several independent hosts in one process (Node's
/// worker threads) gives each host's calls its own sink. A stream opened inside keeps the sink
/// for its later reads.
///
/// ```
/// use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let sink: claw_llm::LogSink = Arc::new(|_level, line: &str| println!("worker 1: {line}"));
/// claw_llm::with_log_sink(sink, async { /* client.call_specific_model(…).await */ }).await;
/// # });
/// ```
///
/// A plain function returning the scoped future (not an `async fn`), so `fut` is stored once:
/// an `async fn` would keep its argument beside the future it awaits, doubling the size that
/// every move of the call's future copies.
pub fn with_log_sink<F: std::future::Future>(
    sink: LogSink,
    fut: F,
) -> impl std::future::Future<Output = F::Output> {
    CALL_SINK.scope(sink, fut)
}

/// The sink of the [`with_log_sink`] scope running now, if any.
pub(crate) fn call_sink() -> Option<LogSink> {
    CALL_SINK.try_with(Arc::clone).ok()
}

/// Writes `line` when `configured` lets `level` through.
pub(crate) fn emit(configured: LogLevel, level: LogLevel, line: &str) {
    emit_to(call_sink().as_ref(), configured, level, line);
}

/// Writes `line` to `sink` (else the process-wide sink) when `configured` lets `level` through.
pub(crate) fn emit_to(sink: Option<&LogSink>, configured: LogLevel, level: LogLevel, line: &str) {
    if configured == LogLevel::Off || level > configured {
        return;
    }
    if let Some(f) = sink {
        return f(level, line);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn a_scoped_sink_gets_the_lines_of_its_scope_only() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let into = seen.clone();
        let sink: LogSink = Arc::new(move |_, line: &str| {
            if let Ok(mut v) = into.lock() {
                v.push(line.to_string());
            }
        });
        let scoped = with_log_sink(sink, async {
            emit(LogLevel::Error, LogLevel::Error, "inside");
            emit(LogLevel::Error, LogLevel::Debug, "filtered by level");
            call_sink().is_some()
        });
        assert!(scoped.await);
        assert!(call_sink().is_none());
        let lines = seen.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(lines, ["inside"]);
    }
}
