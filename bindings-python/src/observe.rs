//! `claw_llm.stats()`, `reset_stats()`, `metrics_text()` and `flush_telemetry()`: the core's
//! numbers and span export, with the GIL released wherever they may wait.

use crate::errors::guard;
use crate::{events, lifecycle};
use pyo3::prelude::*;
use std::time::Duration;

/// Per-model usage since the process started (or `reset_stats`), as JSON. `dropped_events`
/// also counts the events this binding dropped on their way to Python.
#[pyfunction]
pub fn stats_json(py: Python<'_>) -> PyResult<String> {
    guard(py, || {
        let mut stats = claw_llm::stats();
        stats.dropped_events += events::dropped();
        serde_json::to_string(&stats).map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("stats cannot be encoded: {e}"))
        })
    })
}

/// Forgets the numbers `stats_json` and `metrics_text` report.
#[pyfunction]
pub fn reset_stats(py: Python<'_>) -> PyResult<()> {
    guard(py, || {
        claw_llm::reset_stats();
        Ok(())
    })
}

/// The same numbers in the Prometheus text exposition format.
#[pyfunction]
pub fn metrics_text(py: Python<'_>) -> PyResult<String> {
    guard(py, || Ok(claw_llm::metrics_text()))
}

/// Exports the queued spans, waiting (GIL released) at most `timeout_ms`; `true` when all
/// went out in time.
#[pyfunction]
pub fn flush_telemetry(py: Python<'_>, timeout_ms: u64) -> PyResult<bool> {
    guard(py, || {
        Ok(lifecycle::detach(py, move || {
            claw_llm::flush_telemetry(Duration::from_millis(timeout_ms))
        }))
    })
}
