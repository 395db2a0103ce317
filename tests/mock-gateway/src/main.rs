//! claw-mock-gateway: an OpenAI-compatible fake gateway for tests (spec: tests/MOCK_GATEWAY.md).
//!
//! This file holds the command line, the listener, the per-connection loop, the `/__mock/*`
//! routes, the choice between the OTLP receiver and the scenarios, and the exit rules (stdin
//! EOF, SIGTERM, SIGINT).

mod chat;
mod embeddings;
mod errors;
mod hostile;
mod http;
mod mem0;
mod models;
mod otlp;
mod providers;
mod scenario;
mod state;
mod stream;
mod tls;

use std::io::Write as _;
use std::sync::Arc;

use serde_json::json;
use tokio::net::TcpListener;

use crate::http::{Conn, ReadError, Request, Response};
use crate::scenario::{After, Ctx, Route};
use crate::state::State;

const USAGE: &str =
    "usage: claw-mock-gateway [--port N] [--host ADDR] [--expect-key KEY] [--no-stdin-exit]

  --port N         port to listen on (0, the default, picks a free one)
  --host ADDR      address to bind (default 127.0.0.1)
  --expect-key K   the API key `auth` expects and the request log compares against (default sk-test)
  --no-stdin-exit  do not exit when stdin reaches EOF
  --tls-dir DIR    serve HTTPS: generate a CA and certificates, write them as PEM into DIR
                   (ca.pem, server.pem, client-ca.pem, client.pem, client-key.pem)
  --tls-mode M     the server certificate: good (default), wronghost, expired
  --require-client-cert  refuse TLS clients without a certificate signed by client-ca.pem

The first line on stdout is the base URL, e.g. http://127.0.0.1:43817.
See tests/MOCK_GATEWAY.md for the scenarios.";

struct Args {
    host: String,
    port: u16,
    expect_key: String,
    stdin_exit: bool,
    tls_dir: Option<std::path::PathBuf>,
    tls_mode: tls::Mode,
    require_client_cert: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 0,
        expect_key: "sk-test".into(),
        stdin_exit: true,
        tls_dir: None,
        tls_mode: tls::Mode::Good,
        require_client_cert: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                args.port = v.parse().map_err(|_| format!("bad port {v:?}"))?;
            }
            "--host" => args.host = value("--host")?,
            "--expect-key" => args.expect_key = value("--expect-key")?,
            "--no-stdin-exit" => args.stdin_exit = false,
            "--tls-dir" => args.tls_dir = Some(value("--tls-dir")?.into()),
            "--tls-mode" => {
                let v = value("--tls-mode")?;
                args.tls_mode = tls::Mode::parse(&v).ok_or_else(|| {
                    format!("--tls-mode must be good, wronghost or expired, got {v:?}")
                })?;
            }
            "--require-client-cert" => args.require_client_cert = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("claw-mock-gateway: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind((args.host.as_str(), args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "claw-mock-gateway: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            std::process::exit(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("claw-mock-gateway: no local address: {e}");
            std::process::exit(1);
        }
    };
    let acceptor = match &args.tls_dir {
        None => None,
        Some(dir) => match tls::setup(dir, args.tls_mode, args.require_client_cert) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("claw-mock-gateway: {e}");
                std::process::exit(1);
            }
        },
    };
    {
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{scheme}://{addr}");
        let _ = out.flush();
    }

    let state = Arc::new(State::new(args.expect_key));
    tokio::spawn(accept_loop(listener, state, acceptor));

    if args.stdin_exit {
        std::thread::spawn(|| {
            // Exit once stdin reaches EOF (or fails): the parent test harness is gone.
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }
    wait_for_signal().await;
    std::process::exit(0);
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let state = Arc::clone(&state);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let io: Box<dyn http::Io> = match acceptor {
                        None => Box::new(stream),
                        // A failed handshake (untrusted CA, missing client certificate) just closes.
                        Some(a) => match a.accept(stream).await {
                            Ok(tls) => Box::new(tls),
                            Err(_) => return,
                        },
                    };
                    serve_connection(io, state).await
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment and go on.
                eprintln!("claw-mock-gateway: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(stream: Box<dyn http::Io>, state: Arc<State>) {
    let _guard = state.connection_opened();
    let mut conn = Conn::new(stream);
    loop {
        let req = match conn.read_request().await {
            Ok(Some(req)) => req,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Bad(message)) => {
                reject(&mut conn, &state, 400, &message).await;
                return;
            }
            Err(ReadError::TooLarge(status, message)) => {
                reject(&mut conn, &state, status, &message).await;
                return;
            }
        };
        match handle(&mut conn, &state, &req).await {
            After::KeepAlive if req.keep_alive => {}
            After::KeepAlive | After::Close => return,
            After::HoldOpen => {
                conn.wait_for_close().await;
                return;
            }
            After::Reset => {
                conn.reset();
                return;
            }
        }
    }
}

/// Answers an unreadable request and closes.
async fn reject(conn: &mut Conn, state: &State, status: u16, message: &str) {
    let id = format!("req_{}", state.next_request_number());
    let resp = Response::json(status, &scenario::invalid_request(message));
    let mut bytes = resp.head(&id, false);
    bytes.extend_from_slice(&resp.body);
    let _ = conn.write_all(&bytes).await;
}

/// Which route a request is, ignoring any prefix and one trailing slash.
fn route_of(method: &str, path: &str) -> Option<Route> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match method {
        "POST" if path.ends_with("/chat/completions") || path.ends_with("/chat") => {
            Some(Route::Chat)
        }
        "POST" if path.ends_with("/embeddings") => Some(Route::Embeddings),
        "GET" if path.ends_with("/models") => Some(Route::Models),
        _ => None,
    }
}

/// Splits a `/__gw/<spec>` prefix off a path: `(Some(spec), rest)`, or `(None, path)`.
pub(crate) fn split_gateway(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix("/__gw/") else {
        return (None, path);
    };
    match rest.find('/') {
        Some(i) => (Some(&rest[..i]), &rest[i..]),
        None => (Some(rest), ""),
    }
}

async fn handle(conn: &mut Conn, state: &State, req: &Request) -> After {
    let n = state.next_request_number();
    let (gateway, api_path) = split_gateway(&req.path);
    let is_mock_api = req.path.starts_with("/__mock/");
    // Trace exports stay out of the request log so tests that count requests are unaffected.
    let is_export = otlp::is_export(&req.method, api_path);
    if !is_mock_api && !is_export {
        state.log_request(state.describe(req));
    }
    let body = serde_json::from_slice(&req.body).ok();
    let route = route_of(&req.method, api_path);
    let mut ctx = Ctx {
        state,
        req,
        body,
        route: route.unwrap_or(Route::Chat),
        n,
        request_id: format!("req_{n}"),
        keep_alive: req.keep_alive,
        source: scenario::Source::Default,
    };

    if is_mock_api {
        let resp = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/__mock/requests") => Response::json(200, &state.logged_requests()),
            ("DELETE", "/__mock/requests") => {
                Response::json(200, &json!({"cleared": state.clear_log()}))
            }
            ("GET", "/__mock/stats") => Response::json(200, &state.stats()),
            ("GET", "/__mock/spans") => Response::json(200, &state.received_spans()),
            ("DELETE", "/__mock/spans") => {
                Response::json(200, &json!({"cleared": state.clear_spans()}))
            }
            _ => not_found(&req.path),
        };
        return scenario::send(conn, &ctx, &resp).await;
    }
    if is_export {
        return export(conn, &ctx, gateway).await;
    }
    let Some(route) = route else {
        return scenario::send(conn, &ctx, &not_found(&req.path)).await;
    };
    match scenario::choose(req, ctx.body.as_ref(), route, gateway) {
        Ok((spec, source)) => {
            ctx.source = source;
            scenario::dispatch(conn, &ctx, &spec).await
        }
        Err(message) => {
            let resp = Response::json(400, &scenario::invalid_request(&message));
            scenario::send(conn, &ctx, &resp).await
        }
    }
}

/// Answers an OTLP trace export, or holds the connection open for the `hang` scenario.
async fn export(conn: &mut Conn, ctx: &Ctx<'_>, gateway: Option<&str>) -> After {
    let resp = match otlp::plan(ctx.req, gateway) {
        Ok(otlp::Plan::Hang) => return After::HoldOpen,
        Ok(otlp::Plan::Answer) => otlp::receive(ctx.state, ctx.req),
        Err(message) => Response::json(400, &scenario::invalid_request(&message)),
    };
    scenario::send(conn, ctx, &resp).await
}

fn not_found(path: &str) -> Response {
    Response::json(
        404,
        &json!({"error": {"message": format!("no route for {path}"), "type": "invalid_request_error"}}),
    )
}
