//! Resource checks: open file descriptors and resident memory stay flat over many streams
//! abandoned midway and many calls in a row. Its own test binary, so nothing else runs in
//! this process while they are counted; the two cases take turns.

mod common;

use common::*;
use futures::StreamExt;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

/// The cases count process-wide resources: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Absolute slack on top of the 10 % allowed growth of RSS (allocator and runtime noise).
const RSS_SLACK_KIB: u64 = 4 * 1024;
/// Descriptors that may come and go on their own (runtime, pool churn).
const FD_SLACK: usize = 2;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Descriptors open once dropped connections had a moment to close.
async fn baseline_fds() -> usize {
    tokio::time::sleep(Duration::from_millis(100)).await;
    open_fds()
}

/// Waits (bounded) for the descriptor count to come down to `limit`; returns the last count.
async fn settled_fds(limit: usize) -> usize {
    let mut n = open_fds();
    for _ in 0..100 {
        if n <= limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        n = open_fds();
    }
    n
}

async fn mock_open_connections() -> i64 {
    mock_get("/__mock/stats").await["open_connections"]
        .as_i64()
        .unwrap_or(i64::MAX)
}

fn assert_flat(what: &str, rss_then: u64, rss_now: u64, fds_then: usize, fds_now: usize) {
    eprintln!("{what}: RSS {rss_then} → {rss_now} KiB, fds {fds_then} → {fds_now}");
    assert!(
        rss_now <= rss_then + rss_then / 10 + RSS_SLACK_KIB,
        "{what}: RSS grew {rss_then} → {rss_now} KiB"
    );
    assert!(
        fds_now <= fds_then + FD_SLACK,
        "{what}: fds grew {fds_then} → {fds_now}"
    );
}

#[test]
fn abandoned_streams_leave_fds_and_rss_flat() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let c = client();
        // 1,000 streams in batches of 20, each dropped after its second chunk of twenty.
        let abandon_batch = |c: claw_llm::Client| async move {
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        let mut s = c
                            .stream(
                                "mock-stream:tokens=20",
                                msgs("hi"),
                                params(json!({})),
                                opts(5_000, 0),
                            )
                            .await
                            .expect("stream opens");
                        for _ in 0..2 {
                            s.next().await.expect("a chunk").expect("a chunk");
                        }
                        // Dropped here, midway.
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        };
        for _ in 0..5 {
            abandon_batch(c.clone()).await;
        }
        let conns_then = mock_open_connections().await;
        let fds_then = baseline_fds().await;
        let rss_then = rss_kib();
        assert!(rss_then > 0, "VmRSS is not readable");
        for _ in 5..50 {
            abandon_batch(c.clone()).await;
        }
        let fds_now = settled_fds(fds_then).await;
        let rss_now = rss_kib();
        assert_flat(
            "1,000 abandoned streams",
            rss_then,
            rss_now,
            fds_then,
            fds_now,
        );
        let mut conns_now = mock_open_connections().await;
        for _ in 0..100 {
            if conns_now <= conns_then {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            conns_now = mock_open_connections().await;
        }
        assert!(
            conns_now <= conns_then,
            "the gateway still holds {conns_now} connections (was {conns_then})"
        );
    });
}

#[test]
fn ten_thousand_calls_leave_fds_and_rss_flat() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        // Logs off: every tenth call fails on purpose (the error path must not leak either).
        let c = claw_llm::Client::new(
            claw_llm::Config::builder()
                .base_url(&gateway().base)
                .api_key(KEY)
                .ignore_env(true)
                .log_level(claw_llm::LogLevel::Off)
                .build()
                .expect("config"),
        )
        .expect("client");
        let call = |i: u32| {
            let c = c.clone();
            async move {
                let model = if i % 10 == 9 {
                    "mock-err-oneapi"
                } else {
                    "mock-ok"
                };
                let r = c
                    .call_specific_model(
                        model,
                        msgs(&format!("call {i}")),
                        params(json!({})),
                        opts(5_000, 0),
                    )
                    .await;
                match r {
                    Ok(v) => assert_eq!(
                        v["choices"][0]["message"]["content"],
                        format!("echo: call {i}")
                    ),
                    Err(e) => assert_eq!((i % 10, e.code()), (9, "LLM_HTTP_ERROR")),
                }
            }
        };
        for i in 0..1_000 {
            call(i).await;
        }
        let fds_then = baseline_fds().await;
        let rss_then = rss_kib();
        assert!(rss_then > 0, "VmRSS is not readable");
        for i in 1_000..10_000 {
            call(i).await;
        }
        let fds_now = settled_fds(fds_then).await;
        let rss_now = rss_kib();
        assert_flat("10,000 calls", rss_then, rss_now, fds_then, fds_now);
    });
}
