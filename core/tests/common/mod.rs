//! Starts the shared mock gateway (tests/mock-gateway) once per test binary.
#![allow(dead_code)]

use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

pub const KEY: &str = "sk-test";

pub struct Gateway {
    pub base: String,
    _child: Mutex<Child>,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The mock binary: `$CLAW_MOCK_GATEWAY`, else target/debug, building it once if missing.
fn mock_binary() -> PathBuf {
    if let Ok(p) = std::env::var("CLAW_MOCK_GATEWAY") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let bin = target.join("debug").join("claw-mock-gateway");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "claw-mock-gateway"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build the mock gateway");
        assert!(status.success(), "building claw-mock-gateway failed");
    }
    bin
}

/// The gateway shared by every test of this binary (it exits when our stdin pipe closes).
pub fn gateway() -> &'static Gateway {
    static GW: OnceLock<Gateway> = OnceLock::new();
    GW.get_or_init(|| start_gateway(KEY))
}

/// A gateway of its own expecting `expect_key` (it exits when the `Gateway` is dropped).
pub fn start_gateway(expect_key: &str) -> Gateway {
    start_gateway_with(&["--expect-key", expect_key])
}

/// A gateway of its own started with these extra arguments (e.g. the TLS mode's).
pub fn start_gateway_with(args: &[&str]) -> Gateway {
    let mut child = Command::new(mock_binary())
        .args(["--port", "0"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start claw-mock-gateway");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read address");
    Gateway {
        base: line.trim().to_string(),
        _child: Mutex::new(child),
    }
}

/// Every request the gateway at `base` logged.
pub async fn requests_at(base: &str) -> Vec<Value> {
    reqwest::get(format!("{base}/__mock/requests"))
        .await
        .expect("mock admin")
        .json::<Value>()
        .await
        .expect("mock admin json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn client_for(base: &str) -> claw_llm::Client {
    claw_llm::Client::new(
        claw_llm::Config::builder()
            .base_url(base)
            .api_key(KEY)
            .ignore_env(true)
            .build()
            .expect("config"),
    )
    .expect("client")
}

pub fn client() -> claw_llm::Client {
    client_for(&gateway().base)
}

pub fn msgs(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

pub fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub fn opts(timeout_ms: u64, retries: u32) -> claw_llm::CallOptions {
    claw_llm::CallOptions {
        timeout_ms: Some(timeout_ms),
        max_retries: Some(retries),
        ..Default::default()
    }
}

/// A unique key so flaky counters and request-log filters never collide between tests.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn mock_get(path: &str) -> Value {
    reqwest::get(format!("{}{}", gateway().base, path))
        .await
        .expect("mock admin")
        .json()
        .await
        .expect("mock admin json")
}

/// Requests the gateway logged whose body.model equals `model`.
pub async fn requests_for(model: &str) -> Vec<Value> {
    let all = mock_get("/__mock/requests").await;
    all.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["body"]["model"] == model)
        .collect()
}

/// Captures log lines that mention `needle` while alive (the sink is process-wide).
pub struct LogCapture {
    pub lines: Arc<Mutex<Vec<String>>>,
}

pub fn capture_logs() -> LogCapture {
    static LINES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    let lines = LINES
        .get_or_init(|| {
            let l: Arc<Mutex<Vec<String>>> = Arc::default();
            let sink = l.clone();
            claw_llm::set_log_sink(Some(Arc::new(move |_lvl, line: &str| {
                if let Ok(mut v) = sink.lock() {
                    v.push(line.to_string());
                }
            })));
            l
        })
        .clone();
    LogCapture { lines }
}

impl LogCapture {
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.lines
            .lock()
            .map(|v| v.iter().filter(|l| l.contains(needle)).cloned().collect())
            .unwrap_or_default()
    }
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A `Vm*` field of /proc/self/status, in KiB (0 when unreadable).
pub fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    vm_kib("VmRSS")
}
