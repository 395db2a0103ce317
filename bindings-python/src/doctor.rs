//! `python -m claw_llm doctor`: runs the core's doctor (`claw_llm::doctor::main`) with the
//! arguments and `os.environ` Python passes, the GIL released while it runs.

use crate::errors::guard;
use crate::task::{self, Outcome};
use pyo3::prelude::*;
use serde_json::json;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

/// Returns `{"output": <text to print>, "code": <exit status>}`.
#[pyfunction]
#[pyo3(signature = (args, env))]
pub fn doctor(
    py: Python<'_>,
    args: Vec<String>,
    env: HashMap<String, String>,
) -> PyResult<Py<PyAny>> {
    guard(py, || {
        let fut = async move {
            let (output, code) = claw_llm::doctor::main(&args, |n| env.get(n).cloned()).await;
            Ok(Outcome::Json(json!({"output": output, "code": code})))
        };
        let result = task::block_on(py, fut, &CancellationToken::new())?;
        task::settle(py, result)
    })
}
