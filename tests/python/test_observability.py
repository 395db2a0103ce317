"""Observability (tests/scenarios.json, events_*, stats_*, metrics_*, otel_*, observability_*):
attempt and call events, per-model stats, Prometheus text and OpenTelemetry spans sent to the
mock's OTLP receiver. Same names as the Rust and Node suites; the fork and exit cases are
Python's own."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import weakref

import pytest

import claw_llm
from conftest import KEY, USER, refused, running_gateway

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"


def unique(spec: str) -> str:
    """A mock model of scenario `spec` no other test uses (stats and spans are by model)."""
    sep = "," if ":" in spec else ":"
    return f"mock-{spec}{sep}tag={uuid.uuid4().hex[:12]}"


class Recorder:
    """An event listener that keeps what it got (listeners run on the package's thread)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self._lock:
            self.events.append(event)

    def got(self) -> list[dict]:
        assert claw_llm.flush_events(5.0)
        with self._lock:
            return list(self.events)

    def until_call(self, timeout: float = 5.0) -> list[dict]:
        """What it got once a call event came (an abort reaches the request asynchronously)."""
        deadline = time.monotonic() + timeout
        while not any(e["type"] == "call" for e in self.got()) and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.got()


def spans_of(gateway, model: str) -> list[dict]:
    assert claw_llm.flush_telemetry(5.0)
    return [
        s for s in gateway._get("/__mock/spans") if s["attributes"].get("gen_ai.request.model") == model
    ]


@pytest.fixture
def otlp(gateway, monkeypatch):
    """Spans of the calls go to the mock's OTLP receiver (the free functions read the
    environment at every call; a Client when it is created)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", gateway.url)
    return gateway


def test_events_success_attempt_then_call(gateway):
    rec = Recorder()
    client = claw_llm.Client(base_url=gateway.url, api_key=KEY, on_event=rec)
    reply = client.call_specific_model(unique("ok"), USER)
    events = rec.got()
    assert [e["type"] for e in events] == ["attempt", "call"]
    attempt, call = events
    assert (attempt["attempt"], attempt["ok"], attempt["status"], attempt["key_index"]) == (1, True, 200, 0)
    assert attempt["request_id"].startswith("req_")
    assert attempt["endpoint"].endswith("/v1/chat/completions")
    assert (call["attempt"], call["ok"], call["operation"]) == (1, True, "chat")
    assert call["usage"]["total_tokens"] == reply["usage"]["total_tokens"]


def test_events_retry_reports_delay(gateway):
    rec = Recorder()
    model = f"mock-flaky:fails=1,status=500,retry_after_ms=50,key={uuid.uuid4().hex}"
    claw_llm.call_specific_model(model, USER, max_retries=2, on_event=rec)
    events = rec.got()
    assert [(e["type"], e["attempt"], e["ok"]) for e in events] == [
        ("attempt", 1, False),
        ("attempt", 2, True),
        ("call", 2, True),
    ]
    first = events[0]
    assert (first["status"], first["code"], first["retry_delay_ms"]) == (500, "LLM_HTTP_ERROR", 50)


def test_events_failover_names_endpoint_and_key(gateway):
    rec = Recorder()
    dead = refused()
    client = claw_llm.Client(
        base_url=dead,
        api_key="sk-dead-secret",
        fallbacks=[{"base_url": gateway.url, "api_key": KEY}],
        breaker_failures=1000,
        on_event=rec,
    )
    client.call_specific_model(unique("ok"), USER, max_retries=0)
    events = rec.got()
    attempts = [e for e in events if e["type"] == "attempt"]
    assert [(a["attempt"], a["code"]) for a in attempts] == [(1, "LLM_CONNECTION_ERROR"), (2, None)]
    assert attempts[0]["endpoint"].startswith(dead)
    assert attempts[1]["endpoint"].startswith(gateway.url) and attempts[1]["ok"]
    text = repr(events)
    assert "sk-dead-secret" not in text and KEY not in text


def test_events_stream_end_has_ttft_and_usage(gateway):
    rec = Recorder()
    with claw_llm.call_specific_model(unique("stream"), USER, stream=True, on_event=rec) as stream:
        assert list(stream)
    calls = [e for e in rec.got() if e["type"] == "call"]
    assert len(calls) == 1
    call = calls[0]
    assert (call["operation"], call["ok"]) == ("stream", True)
    assert 0 < call["ttft_ms"] <= call["ms"]
    assert call["usage"]["total_tokens"] > 0


def test_events_stream_abort_emits_call(gateway):
    rec = Recorder()
    stream = claw_llm.call_specific_model(unique("stream-stall:after=2"), USER, stream=True, on_event=rec)
    next(stream)
    stream.close()
    calls = [e for e in rec.until_call() if e["type"] == "call"]
    assert [(c["code"], c["ok"]) for c in calls] == [("ABORT_ERR", False)]


def test_events_listener_that_throws_never_breaks_the_call(gateway, caplog):
    model = unique("ok")
    seen = Recorder()

    def boom(event: dict) -> None:
        raise RuntimeError("listener bug")

    @claw_llm.add_event_listener
    def process_wide(event: dict) -> None:
        if event["model"] == model:
            seen(event)

    try:
        client = claw_llm.Client(base_url=gateway.url, api_key=KEY, on_event=boom)
        for _ in range(3):
            assert client.call_specific_model(model, USER)["choices"]
        calls = [e for e in seen.got() if e["type"] == "call"]
        assert len(calls) == 3 and all(c["ok"] for c in calls)
    finally:
        assert claw_llm.remove_event_listener(process_wide)
    assert not claw_llm.remove_event_listener(process_wide)
    assert "listener bug" in caplog.text


def test_stats_after_known_mix(gateway):
    ok, err = unique("ok"), unique("err-oneapi")
    flaky = f"mock-flaky:fails=2,status=503,retry_after_ms=1,key={uuid.uuid4().hex}"
    replies = [claw_llm.call_specific_model(ok, USER) for _ in range(4)]
    claw_llm.call_specific_model(flaky, USER, max_retries=2)
    with pytest.raises(claw_llm.AuthenticationError):
        claw_llm.call_specific_model(err, USER)
    models = claw_llm.stats()["models"]
    s = models[ok]
    assert (s["calls"], s["failures"], s["retries"]) == (4, {}, 0)
    assert s["total_tokens"] == sum(r["usage"]["total_tokens"] for r in replies)
    lat = s["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert models[flaky]["retries"] == 2
    assert models[err]["failures"]["LLM_HTTP_ERROR"] == 1


def test_metrics_text_parses_as_prometheus(gateway):
    from prometheus_client.parser import text_string_to_metric_families

    model = unique("ok")
    claw_llm.call_specific_model(model, USER)
    families = {f.name: f for f in text_string_to_metric_families(claw_llm.metrics_text())}
    assert all(name.startswith("claw_llm_") for name in families)
    calls = [s for s in families["claw_llm_calls"].samples if s.labels.get("model") == model]
    assert [s.value for s in calls] == [1]
    duration = families["claw_llm_call_duration_seconds"]
    assert duration.type == "summary"
    assert any("quantile" in s.labels for s in duration.samples if s.labels.get("model") == model)


def test_otel_span_has_genai_attributes_and_parent(otlp):
    model = unique("ok")
    reply = claw_llm.call_specific_model(model, USER, traceparent=TRACEPARENT)
    [span] = spans_of(otlp, model)
    a = span["attributes"]
    assert (span["name"], span["kind"]) == (f"chat {model}", "client")
    assert (span["trace_id"], span["parent_span_id"]) == (TRACE_ID, PARENT_SPAN)
    assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"]) == ("chat", "openai")
    assert (a["gen_ai.response.model"], a["gen_ai.response.id"]) == (reply["model"], reply["id"])
    assert a["gen_ai.usage.input_tokens"] == reply["usage"]["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == reply["usage"]["completion_tokens"]
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert "gen_ai.input.messages" not in a
    [request] = [r for r in otlp.requests() if r["body"].get("model") == model]
    assert request["headers"]["traceparent"] == f"00-{span['trace_id']}-{span['span_id']}-01"
    assert "traceparent" not in request["body"]


def test_otel_content_only_when_capture_enabled(otlp, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    model = unique("ok")
    text = f"capture me {uuid.uuid4().hex}"
    claw_llm.call_specific_model(model, [{"role": "user", "content": text}])
    [span] = spans_of(otlp, model)
    a = span["attributes"]
    assert text in str(a["gen_ai.input.messages"])
    assert f"echo: {text}" in str(a["gen_ai.output.messages"])


def test_observability_never_shows_the_key(otlp):
    secret = "sk-obs-secret-never-shown"
    with running_gateway(secret) as own:
        rec = Recorder()
        client = claw_llm.Client(base_url=own.url, api_key=secret, on_event=rec)
        ok, denied = unique("auth"), unique("err-oneapi")
        client.call_specific_model(ok, USER)
        with pytest.raises(claw_llm.AuthenticationError):
            client.call_specific_model(denied, USER)
        spans = spans_of(otlp, ok) + spans_of(otlp, denied)
        assert len(spans) == 2
        text = repr(rec.got()) + repr(claw_llm.stats()) + claw_llm.metrics_text() + repr(spans)
    assert secret not in text
    assert ok in text and denied in text


def test_call_listener_is_let_go_after_the_call_and_cannot_flush_from_inside(gateway):
    flushed: list[bool] = []

    class Listener:
        def __call__(self, event: dict) -> None:
            flushed.append(claw_llm.flush_events())

    listener = Listener()
    gone = weakref.ref(listener)
    claw_llm.call_specific_model(unique("ok"), USER, on_event=listener)
    with pytest.raises(claw_llm.ConfigError, match="traceparent"):
        claw_llm.call_specific_model(unique("ok"), USER, on_event=listener, traceparent="00-bad")
    del listener
    # The core's event thread drops its copy of a listener just after delivering; the tag
    # closes then, so give it a moment.
    deadline = time.monotonic() + 5
    while gone() is not None and time.monotonic() < deadline:
        assert claw_llm.flush_events()
        gc.collect()
        time.sleep(0.01)
    assert gone() is None  # both tags closed: the package holds no reference any more
    assert flushed == [False, False]  # a listener cannot wait for its own thread


async def test_async_calls_embeddings_and_models_take_on_event(gateway):
    rec = Recorder()
    client = claw_llm.Client(base_url=gateway.url, api_key=KEY)
    await client.acall_specific_model(unique("ok"), USER, on_event=rec)
    await claw_llm.aembed(unique("embed"), ["a", "b"], on_event=rec)
    await client.alist_models(on_event=rec)
    calls = [(e["operation"], e["ok"]) for e in rec.got() if e["type"] == "call"]
    assert calls == [("chat", True), ("embeddings", True), ("models", True)]


def test_a_stuck_listener_drops_and_counts_instead_of_delaying_calls(gateway):
    release = threading.Event()
    model = unique("ok")

    def stuck(event: dict) -> None:
        release.wait(30)

    claw_llm.add_event_listener(stuck)
    try:
        client = claw_llm.Client(base_url=gateway.url, api_key=KEY)
        before = claw_llm.stats()["dropped_events"]
        started = time.monotonic()
        # Two events per call; the package queues 4096 before it drops.
        for i in range(2100):
            client.call_specific_model(model, USER)
            if i % 64 == 0 and claw_llm.stats()["dropped_events"] > before:
                break
        assert claw_llm.stats()["dropped_events"] > before
        assert time.monotonic() - started < 20
    finally:
        release.set()
        assert claw_llm.remove_event_listener(stuck)
    assert claw_llm.flush_events(10.0)


def run_script(body: str, env: dict[str, str], timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        capture_output=True,
        text=True,
        env=dict(os.environ, LLM_LOG="off", **env),
        timeout=timeout,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_events_reach_a_listener_in_a_forked_child(gateway):
    out = run_script(
        """
        import os, sys, claw_llm
        M = [{"role": "user", "content": "hi"}]
        parent = []
        claw_llm.add_event_listener(parent.append)
        claw_llm.call_specific_model("mock-ok:tag=parent", M)
        assert claw_llm.flush_events(), "parent flush"
        pid = os.fork()
        if pid == 0:
            got = []
            claw_llm.add_event_listener(got.append)
            claw_llm.call_specific_model("mock-ok:tag=child", M)
            ok = claw_llm.flush_events(5.0)
            calls = [e["model"] for e in got if e["type"] == "call"]
            if not ok or calls != ["mock-ok:tag=child"]:
                print("child got", ok, calls, file=sys.stderr)
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        {"LLM_BASE_URL": gateway.url, "LLM_API_KEY": KEY},
    )
    assert (out.returncode, out.stderr) == (0, ""), out.stderr


def test_exit_with_the_event_thread_waiting_is_prompt_and_keeps_the_status(gateway):
    started = time.monotonic()
    out = run_script(
        """
        import sys, claw_llm
        claw_llm.add_event_listener(lambda event: None)
        claw_llm.call_specific_model("mock-ok", [{"role": "user", "content": "hi"}])
        assert claw_llm.flush_events()
        sys.exit(3)
        """,
        {"LLM_BASE_URL": gateway.url, "LLM_API_KEY": KEY},
    )
    assert (out.returncode, out.stderr) == (3, ""), out.stderr
    # The exit hook wakes the waiting thread, which parks: no wait for its timeout or the
    # hook's grace period.
    assert time.monotonic() - started < 1.5


def test_exit_with_a_dead_collector_is_bounded(gateway):
    # A collector that accepts connections and never answers.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        out = run_script(
            """
            import claw_llm
            claw_llm.call_specific_model("mock-ok", [{"role": "user", "content": "hi"}])
            """,
            {
                "LLM_BASE_URL": gateway.url,
                "LLM_API_KEY": KEY,
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.getsockname()[1]}",
            },
            timeout=10.0,
        )
    finally:
        stop.set()
        acceptor.join()
        for conn in held:
            conn.close()
        server.close()
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
