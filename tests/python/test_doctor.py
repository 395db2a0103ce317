"""``python -m claw_llm doctor`` against the mock gateway: the core's doctor through the Python
entry point, asserting on the ``--json`` facts and the exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import KEY

WRONG = "sk-wrong-key-000000000000"


def run_doctor(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    full = {"PATH": os.environ.get("PATH", ""), "NO_PROXY": "127.0.0.1", **env}
    proc = subprocess.run(
        [sys.executable, "-m", "claw_llm", "doctor", "--json", "--timeout-ms", "5000", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stdout


def step(report: dict, name: str) -> dict:
    return next(s for s in report["steps"] if s["name"] == name)


def test_doctor_entry_point_healthy_gateway(gateway):
    code, report, out = run_doctor({"OPENAI_BASE_URL": gateway.url, "OPENAI_API_KEY": KEY, "LLM_MODEL_ID": "qwen-plus"})
    assert code == 0, out
    assert report["ok"] is True
    assert step(report, "configuration")["facts"]["sources"] == {
        "base_url": "OPENAI_BASE_URL",
        "api_key": "OPENAI_API_KEY",
        "model": "LLM_MODEL_ID",
    }
    assert step(report, "chat")["facts"]["request_id"].startswith("req_")
    assert step(report, "stream")["facts"]["done"] is True
    assert step(report, "embeddings")["status"] == "skip"


def test_doctor_entry_point_wrong_key(gateway):
    code, report, out = run_doctor(
        {"LLM_BASE_URL": gateway.url + "/__gw/strict/v1", "LLM_API_KEY": WRONG}, "--model", "qwen-plus"
    )
    assert code == 1, out
    assert step(report, "chat")["facts"]["status"] == 401
    assert [f["id"] for f in report["verdict"]] == ["oneapi_invalid_token"]
    assert WRONG not in out


def test_doctor_entry_point_tls_ssl_cert_file(tmp_path):
    # SSL_CERT_FILE replaces the system roots: the doctor names it as the source that accepted
    # the private CA's certificate, and says how to trust it when it is missing.
    from test_tls import TlsGateway

    gw = TlsGateway(tmp_path)
    try:
        env = {"LLM_BASE_URL": gw.url, "LLM_API_KEY": KEY, "LLM_MODEL_ID": "qwen-plus"}
        code, report, out = run_doctor(env)
        assert code == 1, out
        assert step(report, "tls")["status"] == "fail"
        assert step(report, "tls")["facts"]["subject"] == "CN=claw mock gateway"
        assert [f["id"] for f in report["verdict"]] == ["tls_untrusted"]
        code, report, out = run_doctor({**env, "SSL_CERT_FILE": gw.pem("ca.pem")})
        assert code == 0, out
        assert step(report, "tls")["facts"]["trusted_by"] == "SSL_CERT_FILE"
        assert step(report, "tls")["facts"]["alpn"] == "http/1.1"
    finally:
        gw.stop()
