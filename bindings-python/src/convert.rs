//! JSON values into Python objects.
//!
//! Bodies are parsed by serde_json on the runtime thread (GIL released) and only the object
//! building runs with the GIL. Measured against `json.loads` on the raw bytes (release build):
//! a 0.4 KB chat completion 4.1 µs vs 5.7 µs, a 20 KB one 7.1 µs vs 15.5 µs, 4×1024-float
//! embeddings 293 µs vs 781 µs. Stream batches stay raw text for `json.loads`, which wins on
//! many small objects with repeated keys (it memoizes them).

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString};
use serde_json::Value;

/// Converts `v` (depth is bounded by serde_json's recursion limit of 128).
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let converted = items
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, converted)?.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, x) in map {
                dict.set_item(PyString::new(py, k), to_py(py, x)?)?;
            }
            dict.into_any()
        }
    })
}
