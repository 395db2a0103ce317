//! Soak: 10,000 calls through two endpoints while the first one flaps (up one second, down the
//! next: its port refuses connections and its open connections are cut). Every call must
//! succeed, the breaker of the flapping endpoint must open and close again, and the latency
//! percentiles are printed (not asserted: no timed assertions in tests).

use claw_llm::{CallOptions, Client, Config};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

const CALLS: usize = 10_000;
const IN_FLIGHT: usize = 8;

const REPLY: &str = r#"{"id":"soak","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#;

/// Answers every request on `conn` with [`REPLY`] (HTTP/1.1, keep-alive) until it closes.
async fn serve(mut conn: TcpStream, served: Arc<AtomicUsize>) {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{REPLY}",
            REPLY.len()
        );
        if conn.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        served.fetch_add(1, Ordering::Relaxed);
    }
}

/// A listener on `addr` (port reuse allowed, so it can come back on the same port).
fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket.bind(addr).expect("bind");
    socket.listen(1024).expect("listen")
}

/// Serves on `addr` while `up`; every second it goes down (listener closed, connections cut)
/// or up again, until `stop`. Returns the flips and how many up phases came after a down phase
/// and lasted their whole second (time for the breaker to let a trial through and close).
async fn flapping(
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> (usize, usize) {
    let (mut flips, mut recovered) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let listener = listen(addr);
        let mut conns = JoinSet::new();
        let up_until = Instant::now() + Duration::from_secs(1);
        loop {
            let left = up_until.saturating_duration_since(Instant::now());
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if left.is_zero() {
                if flips > 0 {
                    recovered += 1;
                }
                break;
            }
            if let Ok(Ok((conn, _))) =
                tokio::time::timeout(left.min(Duration::from_millis(50)), listener.accept()).await
            {
                conns.spawn(serve(conn, served.clone()));
            }
        }
        drop(listener);
        conns.abort_all();
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Down for a second (while calls run): the port refuses connections.
        flips += 1;
        let down_until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < down_until && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        flips += 1;
    }
    (flips, recovered)
}

async fn steady(listener: tokio::net::TcpListener, served: Arc<AtomicUsize>) {
    while let Ok((conn, _)) = listener.accept().await {
        tokio::spawn(serve(conn, served.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_flapping_endpoint_loses_no_call() {
    let flap_addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let steady_listener = listen("127.0.0.1:0".parse().expect("addr"));
    let steady_addr = steady_listener.local_addr().expect("addr");
    let (served_flap, served_steady) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let flapper = tokio::spawn(flapping(flap_addr, served_flap.clone(), stop.clone()));
    tokio::spawn(steady(steady_listener, served_steady.clone()));

    let flap_base = format!("http://{flap_addr}");
    let client = Client::new(
        Config::builder()
            .base_url(&flap_base)
            .api_key("sk-soak")
            .fallback(format!("http://{steady_addr}"), "")
            .breaker_failures(5)
            .breaker_cooldown_ms(300)
            .log_level(claw_llm::LogLevel::Off)
            .ignore_env(true)
            .build()
            .expect("config"),
    )
    .expect("client");

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    let phases = Arc::new(std::sync::Mutex::new(Vec::<&'static str>::new()));
    for _ in 0..IN_FLIGHT {
        let (client, next, phases) = (client.clone(), next.clone(), phases.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < CALLS {
                let t = Instant::now();
                let r = client
                    .call_specific_model_raw(
                        "soak-model",
                        json!([{"role": "user", "content": "hi"}]),
                        Default::default(),
                        CallOptions {
                            timeout_ms: Some(10_000),
                            max_retries: Some(3),
                            ..Default::default()
                        },
                    )
                    .await;
                latencies.push(t.elapsed());
                if let Err(e) = r {
                    failed.push(e.to_string());
                }
                // Paced (at most ~2,600 calls/s in all), so the run lasts past the endpoint's
                // first return and the breaker has time to close.
                tokio::time::sleep(Duration::from_millis(3)).await;
                let phase = client.breaker_state()[0].phase.as_str();
                if let Ok(mut p) = phases.lock() {
                    if p.last() != Some(&phase) {
                        p.push(phase);
                    }
                }
            }
            (latencies, failed)
        });
    }
    let mut latencies = Vec::with_capacity(CALLS);
    let mut failed = Vec::new();
    while let Some(done) = workers.join_next().await {
        let (l, f) = done.expect("worker");
        latencies.extend(l);
        failed.extend(f);
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (flips, recovered) = flapper.await.expect("flapper");

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let state = client.breaker_state();
    let phases = phases.lock().map(|p| p.clone()).unwrap_or_default();
    println!(
        "soak: {CALLS} calls in {took:?}, p50 {:?}, p99 {:?}, max {:?}; flapping endpoint served {}, steady {}; {flips} flips, {recovered} full up phases after a down one; breaker opened {} times; phases seen {:?}",
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1],
        served_flap.load(Ordering::Relaxed),
        served_steady.load(Ordering::Relaxed),
        state[0].opens,
        phases,
    );
    assert!(
        failed.is_empty(),
        "{} failed calls, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(latencies.len(), CALLS);
    // Both endpoints carried calls.
    assert!(served_flap.load(Ordering::Relaxed) > 0);
    assert!(served_steady.load(Ordering::Relaxed) > 0);
    // The flapping endpoint's breaker opened when it went down, and closed again once it was
    // back for a whole second (the run is paced to last that long; if a slow machine ran it
    // differently, only what happened is checked). `flips` counts the changes made while the
    // calls ran: 1 is the first time it went down.
    if flips >= 1 {
        // It opened (at least) every time the endpoint went down while calls ran.
        let downs = (flips as u64).div_ceil(2);
        assert!(
            state[0].opens >= downs,
            "{} opens for {downs} downs: {state:?}",
            state[0].opens
        );
        assert!(phases.contains(&"open"), "{phases:?}");
    }
    if recovered >= 1 {
        let first_open = phases
            .iter()
            .position(|p| *p == "open")
            .unwrap_or(usize::MAX);
        assert!(
            phases.iter().skip(first_open).any(|p| *p == "closed"),
            "the breaker never closed after the endpoint came back: {phases:?}"
        );
    }
    // The steady endpoint never failed, so its breaker stayed closed.
    assert_eq!(state[1].phase.as_str(), "closed");
    assert_eq!(state[1].opens, 0);
}
