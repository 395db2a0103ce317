//! The free functions' configuration: `os.environ` read at every call, resolved by the core's
//! `ConfigBuilder::build_with`, on the process-wide connection pool (`Client::shared`).
//!
//! Resolving a configuration (trimming, URL rules) is cached per distinct snapshot of the
//! variables below, so a call whose environment did not change reuses the last `Client`.

use crate::logs;
use claw_llm::{Client, Config, LogLevel};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString};
use std::sync::{Mutex, PoisonError};

// Every variable the core's configuration reads.
use claw_llm::ENV_NAMES as NAMES;

/// Values of [`NAMES`], in order, as `os.environ` has them now; with `LLM_PROVIDERS` set,
/// also every other variable (OpenClaw's config names variables of its own).
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot(Vec<Option<String>>, Vec<(String, String)>);

impl Snapshot {
    /// The lookup handed to `ConfigBuilder::build_with`.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| match NAMES.iter().position(|n| *n == name) {
            Some(i) => self.0[i].clone(),
            None => self
                .1
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        }
    }

    /// `LLM_LOG` of this snapshot (an invalid value counts as the default, `error`).
    pub fn log_level(&self) -> LogLevel {
        LogLevel::from_setting(self.lookup()("LLM_LOG").as_deref())
    }
}

struct Keys {
    os: Py<PyAny>,
    bytes_keys: Vec<Py<PyBytes>>,
}

static KEYS: PyOnceLock<Keys> = PyOnceLock::new();

/// Reads [`NAMES`] from `os.environ` (its bytes dict on POSIX: no per-key Python code runs).
pub fn snapshot(py: Python<'_>) -> PyResult<Snapshot> {
    let keys = KEYS.get_or_try_init(py, || -> PyResult<Keys> {
        Ok(Keys {
            os: py.import("os")?.into_any().unbind(),
            bytes_keys: NAMES
                .iter()
                .map(|n| PyBytes::new(py, n.as_bytes()).unbind())
                .collect(),
        })
    })?;
    let environ = keys.os.bind(py).getattr("environ")?;
    let mut values = Vec::with_capacity(NAMES.len());
    if let Some(data) = environ
        .getattr("_data")
        .ok()
        .and_then(|d| d.cast_into::<PyDict>().ok())
        .filter(|_| cfg!(unix))
    {
        for key in &keys.bytes_keys {
            let v = match data.get_item(key.bind(py))? {
                Some(v) => match v.cast::<PyBytes>() {
                    Ok(b) => Some(String::from_utf8_lossy(b.as_bytes()).into_owned()),
                    Err(_) => Some(v.str()?.to_string()),
                },
                None => None,
            };
            values.push(v);
        }
    } else {
        for name in NAMES {
            let v = environ.call_method1("get", (name,))?;
            values.push(if v.is_none() {
                None
            } else {
                Some(v.cast::<PyString>()?.to_str()?.to_string())
            });
        }
    }
    let providers = NAMES.iter().position(|n| *n == "LLM_PROVIDERS");
    let mut rest = Vec::new();
    if providers.and_then(|i| values[i].as_ref()).is_some() {
        for item in environ.call_method0("items")?.try_iter()? {
            let (k, v): (String, String) = item?.extract()?;
            rest.push((k, v));
        }
    }
    Ok(Snapshot(values, rest))
}

const CACHE_SIZE: usize = 16;
static CACHE: Mutex<Vec<(Snapshot, Client)>> = Mutex::new(Vec::new());

/// The core client for the environment as it is now. A configuration error is logged like any
/// failed call (`[LLM_Client] Error calling <model>: …`), as the core's own free functions do.
pub fn client(py: Python<'_>, model: &str) -> PyResult<Result<Client, claw_llm::Error>> {
    let snap = snapshot(py)?;
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, c)) = cache.iter().find(|(s, _)| *s == snap) {
        return Ok(Ok(c.clone()));
    }
    let built = Config::builder()
        .build_with(snap.lookup())
        .and_then(Client::shared);
    match built {
        Ok(c) => {
            if cache.len() >= CACHE_SIZE {
                cache.remove(0);
            }
            cache.push((snap, c.clone()));
            Ok(Ok(c))
        }
        Err(e) => {
            logs::push_error(snap.log_level(), model, &e);
            Ok(Err(e))
        }
    }
}
