//! `claw_llm._native`: the Python binding of the claw-llm core.
//!
//! Thin by design (STYLE.md): the core owns every behaviour; this crate converts arguments,
//! results and errors, and runs core futures on one process-wide tokio runtime
//! ([`runtime`]) without any Rust thread ever taking the GIL:
//! * sync calls wait with the GIL released, waking every 50 ms to run signal handlers so
//!   Ctrl-C cancels the request ([`task::block_on`]);
//! * asyncio calls complete through a per-loop socket the loop watches ([`notify`]);
//! * a stream is read ahead by a pump task into a buffer Python takes whole ([`stream`]);
//! * bodies are parsed off the GIL and built into Python objects directly ([`convert`]);
//! * events are queued for a Python thread of the package that calls the listeners ([`events`]);
//! * log lines are queued and written to the `claw_llm` logger when a call settles ([`logs`]);
//! * every entry point catches panics and raises `claw_llm.LLMClientError` ([`errors`]).
//!
//! The `claw_llm` package (bindings-python/python) is the public API; this module is private.

mod call;
mod client;
mod convert;
mod doctor;
mod env;
mod errors;
mod events;
mod lifecycle;
mod logs;
mod notify;
mod observe;
mod runtime;
mod stream;
mod task;

use pyo3::prelude::*;

/// Called once by `claw_llm/__init__.py`: the exception factory and the log emitter.
#[pyfunction]
fn _install(error_factory: Py<PyAny>, log_emitter: Py<PyAny>) {
    errors::install(error_factory);
    logs::install_emitter(log_emitter);
}

/// Every endpoint breaker of the process (JSON), judged with `os.environ`'s
/// `LLM_BREAKER_COOLDOWN_MS`.
#[pyfunction]
fn breaker_state_json(py: Python<'_>) -> PyResult<String> {
    errors::guard(py, || {
        let snap = env::snapshot(py)?;
        let cooldown = snap.lookup()("LLM_BREAKER_COOLDOWN_MS")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(claw_llm::breaker::DEFAULT_BREAKER_COOLDOWN_MS);
        let states =
            claw_llm::breaker::states_with_cooldown(std::time::Duration::from_millis(cooldown));
        Ok(errors::breakers_json(&states))
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logs::install_sink();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("ENV_NAMES", claw_llm::ENV_NAMES.to_vec())?;
    m.add("PANIC_CODE", errors::PANIC_CODE)?;
    m.add_function(wrap_pyfunction!(_install, m)?)?;
    m.add_function(wrap_pyfunction!(call::call, m)?)?;
    m.add_function(wrap_pyfunction!(call::start, m)?)?;
    m.add_function(wrap_pyfunction!(lifecycle::_at_exit, m)?)?;
    m.add_function(wrap_pyfunction!(lifecycle::_after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(doctor::doctor, m)?)?;
    m.add_function(wrap_pyfunction!(breaker_state_json, m)?)?;
    m.add_function(wrap_pyfunction!(events::_events_global, m)?)?;
    m.add_function(wrap_pyfunction!(events::_events_wait, m)?)?;
    m.add_function(wrap_pyfunction!(events::_events_flush, m)?)?;
    m.add_function(wrap_pyfunction!(observe::stats_json, m)?)?;
    m.add_function(wrap_pyfunction!(observe::reset_stats, m)?)?;
    m.add_function(wrap_pyfunction!(observe::metrics_text, m)?)?;
    m.add_function(wrap_pyfunction!(observe::flush_telemetry, m)?)?;
    #[cfg(feature = "test-panic")]
    m.add_function(wrap_pyfunction!(call::_force_panic_for_tests, m)?)?;
    m.add_class::<client::NativeClient>()?;
    m.add_class::<stream::NativeStream>()?;
    m.add_class::<notify::Notifier>()?;
    m.add_class::<notify::Handle>()?;
    Ok(())
}
