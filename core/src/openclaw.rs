//! OpenClaw's own providers (`LLM_PROVIDERS=openclaw`): a model written `provider/model` whose
//! provider id is configured under `models.providers` of OpenClaw's config file
//! (`OPENCLAW_CONFIG_PATH`, else `~/.openclaw/openclaw.json`, JSON5) goes to that provider's
//! `baseUrl` with its `apiKey`, `headers` and `timeoutSeconds`, and the model id after the
//! slash. Any other model, and every model when `LLM_PROVIDERS` is unset, keeps the
//! environment's configuration.
//!
//! Values are resolved as OpenClaw resolves them: `"${VAR}"` inside a string is the variable's
//! value (`$${` is a literal `${`), and a SecretRef object `{ source: "env", id: "VAR" }` is the
//! variable itself. Other SecretRef sources (`file`, `exec`) need OpenClaw's secret providers
//! and are refused with a clear error. `<PROVIDER>_API_KEYS` (the id in upper case, `-` as `_`),
//! comma-separated, adds keys after `apiKey` for key rotation.

use crate::config::Config;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// One provider of OpenClaw's config, as a configuration of its own.
#[derive(Clone, Debug)]
pub(crate) struct Provider {
    pub id: String,
    pub config: Config,
}

/// The variables of the environment's own gateway, which a provider's configuration must not
/// inherit (it has its own URL, keys and no fallbacks).
const NOT_INHERITED: &[&str] = &[
    "LLM_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "LLM_API_KEY",
    "OPENAI_API_KEY",
    "LLM_API_KEYS",
    "LLM_CHAT_URL",
    "LLM_MODEL_ID",
    "LLM_FALLBACK_BASE_URLS",
    "LLM_FALLBACK_API_KEYS",
    "LLM_FALLBACK_MODELS",
    "LLM_PROVIDERS",
];

/// The providers `LLM_PROVIDERS=openclaw` asks for; `None` when it is unset.
pub(crate) fn load(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Arc<Vec<Provider>>>> {
    let mode = get("LLM_PROVIDERS");
    let explicit = get("OPENCLAW_CONFIG_PATH");
    let home = get("HOME");
    let Some(mode) = mode else {
        return Ok(None);
    };
    if !mode.trim().eq_ignore_ascii_case("openclaw") {
        return Err(Error::config(format!(
            "LLM_PROVIDERS must be openclaw (or unset), got {mode:?}"
        )));
    }
    let path = match (explicit, home) {
        (Some(p), _) => p,
        (None, Some(h)) => format!("{}/.openclaw/openclaw.json", h.trim_end_matches('/')),
        (None, None) => {
            return Err(Error::config(
                "LLM_PROVIDERS=openclaw needs OPENCLAW_CONFIG_PATH (or HOME for ~/.openclaw/openclaw.json)",
            ))
        }
    };
    let doc = read(&path)?;
    let providers = doc
        .get("models")
        .and_then(|m| m.get("providers"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(providers.len());
    for (id, p) in providers {
        out.push(Provider {
            config: provider_config(&path, &id, &p, get)?,
            id,
        });
    }
    Ok(Some(Arc::new(out)))
}

/// The parsed config file, cached while its size and modification time stay the same (the
/// free functions build a configuration at every call).
fn read(path: &str) -> Result<Arc<Value>> {
    type Cached = (String, Option<SystemTime>, u64, Arc<Value>);
    static CACHE: Mutex<Option<Cached>> = Mutex::new(None);
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::config(format!("OpenClaw config {path} cannot be read: {e}")))?;
    let (modified, len) = (meta.modified().ok(), meta.len());
    if let Some((p, m, l, v)) = CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        if p == path && *m == modified && *l == len && modified.is_some() {
            return Ok(v.clone());
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("OpenClaw config {path} cannot be read: {e}")))?;
    let doc: Value = json5::from_str(&text)
        .map_err(|e| Error::config(format!("OpenClaw config {path} is not valid JSON5: {e}")))?;
    if !doc.is_object() {
        return Err(Error::config(format!(
            "OpenClaw config {path} must hold an object at the top"
        )));
    }
    let doc = Arc::new(doc);
    *CACHE.lock().unwrap_or_else(PoisonError::into_inner) =
        Some((path.to_string(), modified, len, doc.clone()));
    Ok(doc)
}

fn provider_config(
    path: &str,
    id: &str,
    p: &Value,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Config> {
    let field = |name: &str| format!("models.providers.{id}.{name} in {path}");
    let p = p.as_object().ok_or_else(|| {
        Error::config(format!("models.providers.{id} in {path} must be an object"))
    })?;
    let base = match p.get("baseUrl") {
        Some(v) => resolve(v, &field("baseUrl"), get)?,
        None => return Err(Error::config(format!("{} is missing", field("baseUrl")))),
    };
    let mut keys = Vec::new();
    if let Some(v) = p.get("apiKey") {
        keys.push(resolve(v, &field("apiKey"), get)?);
    }
    let list_name = format!("{}_API_KEYS", id.to_ascii_uppercase().replace('-', "_"));
    if let Some(list) = get(&list_name) {
        keys.extend(
            list.split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
        );
    }
    let mut keys = keys.into_iter();
    let first = keys.next().ok_or_else(|| {
        Error::config(format!(
            "{} is missing (nor is {list_name} set)",
            field("apiKey")
        ))
    })?;
    let mut b = Config::builder()
        .base_url(base)
        .api_key(first)
        .api_keys(keys.collect::<Vec<_>>());
    if let Some(h) = p.get("headers") {
        let h = h
            .as_object()
            .ok_or_else(|| Error::config(format!("{} must be an object", field("headers"))))?;
        for (name, v) in h {
            b = b.header(name, resolve(v, &field(&format!("headers.{name}")), get)?);
        }
    }
    if let Some(t) = p.get("timeoutSeconds") {
        let secs = t
            .as_f64()
            .filter(|s| *s > 0.0 && *s <= 1e9)
            .ok_or_else(|| {
                Error::config(format!(
                    "{} must be a positive number of seconds, got {t}",
                    field("timeoutSeconds")
                ))
            })?;
        b = b.timeout_ms(((secs * 1000.0) as u64).max(1));
    }
    let inherited = |name: &str| {
        if NOT_INHERITED.contains(&name) {
            None
        } else {
            get(name)
        }
    };
    b.build_with(inherited)
        .map_err(|e| Error::config(format!("OpenClaw provider {id} ({path}): {e}")))
}

/// A config value: a string with `${VAR}` references, or an env SecretRef.
fn resolve(v: &Value, what: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    match v {
        Value::String(s) => substitute(s, what, get),
        Value::Object(o) => secret_ref(o, what, get),
        other => Err(Error::config(format!(
            "{what} must be a string or a SecretRef, got {other}"
        ))),
    }
}

fn secret_ref(
    o: &Map<String, Value>,
    what: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let source = o.get("source").and_then(Value::as_str).unwrap_or("");
    let id = o.get("id").and_then(Value::as_str).unwrap_or("");
    if source != "env" {
        return Err(Error::config(format!(
            "{what}: only env SecretRefs ({{ source: \"env\", id: \"VAR\" }}) are supported here, got source {source:?}"
        )));
    }
    if id.is_empty() {
        return Err(Error::config(format!("{what}: the SecretRef has no id")));
    }
    get(id).ok_or_else(|| Error::config(format!("{what}: {id} is not set")))
}

/// `${VAR}` (or `${env:VAR}`) replaced by the variable's value; `$${` is a literal `${`.
fn substitute(s: &str, what: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| Error::config(format!("{what}: unclosed ${{ in the value")))?;
            let name = after[..end].trim();
            let name = name.strip_prefix("env:").unwrap_or(name);
            let value =
                get(name).ok_or_else(|| Error::config(format!("{what}: {name} is not set")))?;
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::tests::env;

    #[test]
    fn substitute_resolves_escapes_and_names_a_missing_variable() {
        let e = env(&[("HOST", "h:1"), ("K", "sk")]);
        assert_eq!(
            substitute("http://${HOST}/v1", "x", &e).unwrap(),
            "http://h:1/v1"
        );
        assert_eq!(substitute("${env:K}", "x", &e).unwrap(), "sk");
        assert_eq!(substitute("a$${HOST}$b", "x", &e).unwrap(), "a${HOST}$b");
        let err = substitute("${NOPE}", "models.providers.p.apiKey", &e).unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
    }

    #[test]
    fn only_env_secret_refs_are_resolved() {
        let e = env(&[("K", "sk")]);
        let ok = serde_json::json!({"source": "env", "provider": "default", "id": "K"});
        assert_eq!(resolve(&ok, "x", &e).unwrap(), "sk");
        let file = serde_json::json!({"source": "file", "provider": "f", "id": "/k"});
        let err = resolve(&file, "x", &e).unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }

    #[test]
    fn unset_providers_reads_no_file() {
        assert!(load(&env(&[("OPENCLAW_CONFIG_PATH", "/nonexistent")]))
            .unwrap()
            .is_none());
        let err = load(&env(&[("LLM_PROVIDERS", "litellm")])).unwrap_err();
        assert!(err.to_string().contains("LLM_PROVIDERS"), "{err}");
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_line() {
        let dir = std::env::temp_dir().join(format!("claw-openclaw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.json");
        std::fs::write(
            &path,
            "{\n  // fine\n  models: { providers: { p: { baseUrl: } } }\n}\n",
        )
        .unwrap();
        let p = path.to_string_lossy().to_string();
        let err = load(&env(&[
            ("LLM_PROVIDERS", "openclaw"),
            ("OPENCLAW_CONFIG_PATH", &p),
        ]))
        .unwrap_err();
        assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
        assert!(
            err.to_string().contains(&p) && err.to_string().contains("line 3"),
            "{err}"
        );
    }
}
