"""claw_llm.mem0 (docs/behaviour.md#mem0) against the real mem0ai package and the mock gateway's mem0
scenario: the LLM and embedder adapters, and Memory.add then Memory.search end to end.

mem0 must not phone home: telemetry is off, its home is a temporary directory, and every
Python-level connection other than loopback fails the test (spaCy/fastembed are blocked so
no model download is even attempted)."""

from __future__ import annotations

import atexit
import json
import ipaddress
import os
import shutil
import socket
import sys
import tempfile

import pytest

os.environ["MEM0_TELEMETRY"] = "False"
_MEM0_HOME = tempfile.mkdtemp(prefix="claw-llm-mem0-")
os.environ.setdefault("MEM0_DIR", _MEM0_HOME)
atexit.register(shutil.rmtree, _MEM0_HOME, True)

mem0 = pytest.importorskip("mem0")
pytest.importorskip("qdrant_client")

import claw_llm  # noqa: E402
from claw_llm import mem0 as claw_mem0  # noqa: E402
from conftest import KEY  # noqa: E402

CHAT_MODEL = "MiniMax-M2.5"
EMBED_MODEL = "text-embedding-v4"
DIMS = 64


def _loopback_only(address) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("localhost",):
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            pass
        raise AssertionError(f"a test tried to reach {address!r}: only loopback is allowed")


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _loopback_only(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _loopback_only(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    for blocked in ("spacy", "fastembed"):  # would download models from the internet
        monkeypatch.setitem(sys.modules, blocked, None)


@pytest.fixture
def mem0_env(gateway, monkeypatch):
    monkeypatch.setenv("LLM_MODEL_ID", CHAT_MODEL)
    monkeypatch.setenv("EMBEDDING_MODEL_ID", EMBED_MODEL)
    monkeypatch.setenv("EMBEDDING_DIMS", str(DIMS))
    return gateway


def _assert_all_through_claw_llm(gateway, chat_model=CHAT_MODEL):
    reqs = gateway.requests()
    assert reqs, "mem0 made no request"
    chats = [r for r in reqs if r["path"] == "/v1/chat/completions"]
    embeds = [r for r in reqs if r["path"] == "/v1/embeddings"]
    assert chats and embeds
    assert len(chats) + len(embeds) == len(reqs), [r["path"] for r in reqs]
    for r in reqs:
        assert r["headers"]["user-agent"].startswith("claw-llm/"), r["headers"]
        assert r["headers"]["authorization"] == "Bearer <redacted>"
    assert {r["body"]["model"] for r in chats} == {chat_model}
    assert {r["body"]["model"] for r in embeds} == {EMBED_MODEL}
    assert {r["body"]["dimensions"] for r in embeds} == {DIMS}
    assert {r["body"]["encoding_format"] for r in embeds} == {"float"}
    return chats, embeds


def test_mem0_tests_cannot_reach_the_internet():
    with pytest.raises(AssertionError, match="only loopback"):
        socket.create_connection(("198.51.100.7", 443), timeout=0.1)


def test_mem0_adapters_subclass_mem0_bases():
    from mem0.embeddings.base import EmbeddingBase
    from mem0.llms.base import LLMBase

    assert claw_mem0.HAVE_MEM0
    assert issubclass(claw_mem0.ClawLLM, LLMBase)
    assert issubclass(claw_mem0.ClawEmbedder, EmbeddingBase)


def test_mem0_llm_returns_content(mem0_env):
    llm = claw_mem0.ClawLLM()
    assert llm.model == CHAT_MODEL
    out = llm.generate_response([{"role": "user", "content": "hello there"}])
    assert out == "echo: hello there"
    [req] = mem0_env.requests()
    # mem0's own defaults for OpenAI-compatible providers come along.
    assert req["body"]["temperature"] == 0.1 and req["body"]["max_tokens"] == 2000


def test_mem0_llm_passes_response_format_and_tools(mem0_env):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    out = claw_mem0.ClawLLM().generate_response(
        [{"role": "user", "content": "x"}], response_format={"type": "json_object"}, tools=tools, tool_choice="required"
    )
    assert out == {"content": "echo: x", "tool_calls": []}
    [req] = mem0_env.requests()
    assert req["body"]["response_format"] == {"type": "json_object"}
    assert req["body"]["tools"] == tools and req["body"]["tool_choice"] == "required"


def test_mem0_llm_parses_tool_calls(monkeypatch):
    reply = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "add_memory", "arguments": '{"data": "likes tea"}'}},
                        {"id": "b", "type": "function", "function": {"name": "noop", "arguments": '```json\n{"x": 1}\n```'}},
                    ],
                }
            }
        ]
    }
    monkeypatch.setattr(claw_llm, "call_specific_model", lambda *a, **k: reply)
    out = claw_mem0.ClawLLM(model="m").generate_response([{"role": "user", "content": "x"}], tools=[{"type": "function"}])
    assert out == {
        "content": None,
        "tool_calls": [{"name": "add_memory", "arguments": {"data": "likes tea"}}, {"name": "noop", "arguments": {"x": 1}}],
    }


def test_mem0_embedder_embeds_with_configured_model_and_dims(mem0_env):
    emb = claw_mem0.ClawEmbedder()
    vec = emb.embed("green tea\nin Hangzhou", memory_action="add")
    assert len(vec) == DIMS and all(isinstance(x, float) for x in vec)
    vectors = emb.embed_batch(["a", "b c", "d"])
    assert len(vectors) == 3 and all(len(v) == DIMS for v in vectors)
    first, batch = mem0_env.requests()
    assert first["body"]["input"] == ["green tea in Hangzhou"]
    assert batch["body"]["input"] == ["a", "b c", "d"]  # one request for the batch
    assert batch["body"]["model"] == EMBED_MODEL and batch["body"]["dimensions"] == DIMS


def test_mem0_errors_are_claw_llm_errors(mem0_env):
    with pytest.raises(claw_llm.AuthenticationError):
        claw_mem0.ClawLLM(model="mock-err-oneapi:status=401").generate_response([{"role": "user", "content": "x"}])


def _search(memory, query: str, user_id: str, **kwargs):
    """mem0 2.x takes filters=; 1.x wants user_id= (and rejects a search without it)."""
    try:
        hits = memory.search(query, filters={"user_id": user_id}, **kwargs)
    except (TypeError, mem0.exceptions.ValidationError):
        hits = memory.search(query, user_id=user_id, **kwargs)
    return hits["results"] if isinstance(hits, dict) else hits


async def _asearch(memory, query: str, user_id: str):
    try:
        hits = await memory.search(query, filters={"user_id": user_id})
    except (TypeError, mem0.exceptions.ValidationError):
        hits = await memory.search(query, user_id=user_id)
    return hits["results"] if isinstance(hits, dict) else hits


def _add_then_search(memory, gateway, chat_model=CHAT_MODEL):
    added = memory.add(
        [{"role": "user", "content": "I live in Hangzhou. I drink green tea every morning."}], user_id="alice"
    )
    texts = [r["memory"] for r in added["results"]]
    assert "I drink green tea every morning" in texts, added
    results = _search(memory, "what does alice drink in the morning? green tea", "alice")
    assert results and results[0]["memory"] == "I drink green tea every morning", results
    assert results[0]["user_id"] == "alice"
    return _assert_all_through_claw_llm(gateway, chat_model)


def test_mem0_end_to_end_add_then_search(mem0_env, tmp_path):
    memory = claw_mem0.build_memory(history_db_path=str(tmp_path / "history.db"))
    assert isinstance(memory, mem0.Memory)
    assert isinstance(memory.llm, claw_mem0.ClawLLM)
    assert isinstance(memory.embedding_model, claw_mem0.ClawEmbedder)
    assert memory.vector_store.embedding_model_dims == DIMS
    _add_then_search(memory, mem0_env)


def test_mem0_end_to_end_with_the_mock_mem0_scenario(mem0_env, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_MODEL_ID", "mock-mem0")
    memory = claw_mem0.build_memory(history_db_path=str(tmp_path / "h.db"), qdrant_path=str(tmp_path / "qdrant"))
    _add_then_search(memory, mem0_env, chat_model="mock-mem0")
    assert (tmp_path / "qdrant").exists()


def test_mem0_end_to_end_with_mem0_env_names(gateway, monkeypatch, tmp_path):
    # mem0_client.py's names only: OPENAI_BASE_URL / OPENAI_API_KEY.
    monkeypatch.delenv("LLM_BASE_URL")
    monkeypatch.delenv("LLM_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", gateway.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    memory = claw_mem0.build_memory(
        llm_model=CHAT_MODEL, embedding_model=EMBED_MODEL, embedding_dims=DIMS, history_db_path=str(tmp_path / "h.db")
    )
    _add_then_search(memory, gateway)


def test_mem0_build_memory_learns_dims_when_unset(gateway, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_MODEL_ID", CHAT_MODEL)
    monkeypatch.setenv("EMBEDDING_MODEL_ID", EMBED_MODEL)
    memory = claw_mem0.build_memory(history_db_path=str(tmp_path / "h.db"))
    assert memory.vector_store.embedding_model_dims == 1024  # the mock's default size
    assert "dimensions" not in gateway.requests()[0]["body"]


async def test_mem0_async_memory_end_to_end(mem0_env, tmp_path):
    memory = claw_mem0.build_memory(history_db_path=str(tmp_path / "h.db"), async_memory=True)
    assert isinstance(memory, mem0.AsyncMemory)
    await memory.add([{"role": "user", "content": "My cat is called Miso."}], user_id="bob")
    results = await _asearch(memory, "what is the cat called? Miso", "bob")
    assert results[0]["memory"] == "My cat is called Miso"
    _assert_all_through_claw_llm(mem0_env)


# --- the users' production path: DashScope-sized batches, a MiniMax-like reasoning model ----

MINIMAX = "mock-minimax"
MEM0_MAJOR = int(str(getattr(mem0, "__version__", "2")).split(".")[0])
#: More than 10 facts, so the memories mem0 embeds in one embed_batch exceed DashScope's limit.
FACTS = [
    "I live in Hangzhou",
    "I drink green tea every morning",
    "My sister works as a nurse",
    "I play badminton on Saturdays",
    "My favourite author is Lu Xun",
    "I am allergic to peanuts",
    "I drive an electric scooter",
    "My daughter learns the violin",
    "I was born in Chengdu",
    "I collect old postage stamps",
    "My dog is called Doudou",
    "I study Japanese at night",
]


@pytest.fixture
def production_env(gateway, monkeypatch):
    """LLM_MODEL_ID: the MiniMax-like model; EMBEDDING_MODEL_ID: text-embedding-v4, which the
    mock answers like DashScope (at most 10 inputs per request)."""
    monkeypatch.setenv("LLM_MODEL_ID", MINIMAX)
    monkeypatch.setenv("EMBEDDING_MODEL_ID", EMBED_MODEL)
    monkeypatch.setenv("EMBEDDING_DIMS", str(DIMS))
    return gateway


def _embed_inputs(gateway) -> list[list[str]]:
    return [r["body"]["input"] for r in gateway.requests() if r["path"] == "/v1/embeddings" and isinstance(r["body"]["input"], list)]


def _assert_many_memories(added) -> None:
    texts = {r["memory"] for r in added["results"]}
    assert len(texts) > 10 and set(FACTS) <= texts, texts


def _assert_production_requests(gateway) -> None:
    inputs = _embed_inputs(gateway)
    assert inputs and all(len(i) <= 10 for i in inputs), [len(i) for i in inputs]
    if MEM0_MAJOR >= 2:  # mem0 2.x embeds all new memories in one embed_batch; 1.x one by one
        assert any(len(i) == 10 for i in inputs), "a batch of more than 10 memories was split"
    chats = [r for r in gateway.requests() if r["path"] == "/v1/chat/completions"]
    assert chats and {r["body"]["model"] for r in chats} == {MINIMAX}
    assert all("reasoning" not in r["body"] for r in chats)


def _conversation() -> list[dict]:
    return [{"role": "user", "content": ". ".join(FACTS) + "."}]


def test_mem0_llm_splits_reasoning_and_strips_the_json_fence(production_env):
    llm = claw_mem0.ClawLLM()
    assert llm.model == MINIMAX
    assert llm.generate_response([{"role": "user", "content": "x"}]) == "echo: x"
    out = llm.generate_response([{"role": "user", "content": "x"}], response_format={"type": "json_object"})
    assert json.loads(out) == {"answer": "echo: x"}
    # Without JSON asked for, a fence is the model's text and stays.
    assert claw_mem0._strip_fence("```json\n{}\n```") == "{}"
    assert claw_mem0._strip_fence("see ```x``` here") == "see ```x``` here"


def test_mem0_embed_batch_is_one_call_split_by_the_core(production_env):
    texts = [f"text number {i}" for i in range(25)]
    vectors = claw_mem0.ClawEmbedder().embed_batch(texts)
    assert len(vectors) == 25 and all(len(v) == DIMS for v in vectors)
    assert sorted(len(i) for i in _embed_inputs(production_env)) == [5, 10, 10]
    assert vectors[17] == claw_mem0.ClawEmbedder().embed("text number 17")


def test_mem0_end_to_end_dashscope_batches_and_minimax_reasoning(production_env, tmp_path):
    memory = claw_mem0.build_memory(history_db_path=str(tmp_path / "h.db"))
    _assert_many_memories(memory.add(_conversation(), user_id="carol"))
    results = _search(memory, "what does carol drink every morning? green tea", "carol")
    assert results[0]["memory"] == "I drink green tea every morning", results
    _assert_production_requests(production_env)


async def test_mem0_async_end_to_end_dashscope_batches_and_minimax_reasoning(production_env, tmp_path):
    memory = claw_mem0.build_memory(history_db_path=str(tmp_path / "h.db"), async_memory=True)
    assert isinstance(memory, mem0.AsyncMemory)
    _assert_many_memories(await memory.add(_conversation(), user_id="dave"))
    results = await _asearch(memory, "what is the dog called? Doudou", "dave")
    assert results[0]["memory"] == "My dog is called Doudou", results
    _assert_production_requests(production_env)


def test_mem0_llm_reranker_goes_through_claw_llm(production_env, tmp_path):
    memory = claw_mem0.build_memory(history_db_path=str(tmp_path / "h.db"), reranker=True)
    assert isinstance(memory.reranker.llm, claw_mem0.ClawLLM)
    assert memory.reranker.llm.model == MINIMAX
    memory.add(_conversation(), user_id="erin")
    production_env.clear()
    results = _search(memory, "what does erin drink every morning? green tea", "erin", rerank=True)
    assert results[0]["memory"] == "I drink green tea every morning", results
    assert results[0]["rerank_score"] > 0.5
    scoring = [
        r
        for r in production_env.requests()
        if r["path"] == "/v1/chat/completions" and "numerical score" in r["body"]["messages"][0]["content"]
    ]
    assert scoring and {r["body"]["model"] for r in scoring} == {MINIMAX}
    assert all(r["headers"]["user-agent"].startswith("claw-llm/") for r in scoring)


def test_mem0_build_memory_keeps_a_user_config(gateway, tmp_path):
    user = {
        "llm": {"provider": "openai", "config": {"model": MINIMAX, "api_key": "sk-not-used"}},
        "embedder": {"provider": "openai", "config": {"model": EMBED_MODEL, "embedding_dims": DIMS}},
        "vector_store": {
            "provider": "qdrant",
            "config": {"collection_name": "mine", "path": str(tmp_path / "q"), "embedding_model_dims": DIMS},
        },
        "history_db_path": str(tmp_path / "mine.db"),
        "reranker": {"provider": "llm_reranker", "config": {"top_k": 3}},
    }
    snapshot = json.dumps(user, sort_keys=True)
    memory = claw_mem0.build_memory(config=user)
    assert json.dumps(user, sort_keys=True) == snapshot, "the caller's dict is not changed"
    assert isinstance(memory.llm, claw_mem0.ClawLLM) and memory.llm.model == MINIMAX
    assert isinstance(memory.embedding_model, claw_mem0.ClawEmbedder)
    assert (memory.embedding_model.model, memory.embedding_model.dims) == (EMBED_MODEL, DIMS)
    assert memory.collection_name == "mine" and (tmp_path / "q").exists()
    assert memory.config.history_db_path == str(tmp_path / "mine.db")
    assert isinstance(memory.reranker.llm, claw_mem0.ClawLLM) and memory.reranker.config.top_k == 3
    _assert_many_memories(memory.add(_conversation(), user_id="fay"))
    results = _search(memory, "where was fay born? Chengdu", "fay")
    assert results[0]["memory"] == "I was born in Chengdu", results
    _assert_production_requests(gateway)
