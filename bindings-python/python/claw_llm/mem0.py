"""claw_llm as mem0's LLM and embedder (docs/behaviour.md#mem0). Needs the ``mem0`` extra
(``pip install 'claw-llm[mem0]'``); without mem0 installed the two classes still work on
their own.

Configuration is the one of every claw_llm call: ``LLM_BASE_URL`` / ``LLM_API_KEY`` (or
mem0's ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``), ``LLM_MODEL_ID`` (chat),
``EMBEDDING_MODEL_ID`` and ``EMBEDDING_DIMS`` (embeddings).

    from claw_llm.mem0 import build_memory

    memory = build_memory()                      # mem0.Memory wired to claw_llm
    memory.add("I live in Hangzhou and I like green tea.", user_id="alice")
    memory.search("what does alice drink?", filters={"user_id": "alice"})

mem0's config validation only accepts its built-in provider names, so :func:`build_memory`
builds the ``Memory`` with placeholder ``openai`` blocks (never used, pointed at nothing) and
then sets ``memory.llm`` / ``memory.embedding_model`` to :class:`ClawLLM` /
:class:`ClawEmbedder`.

What the two always do for mem0's sake: :class:`ClawLLM` splits a leading ``<think>…</think>``
block off the answer (MiniMax-M2.x, Qwen3 and DeepSeek-R1 keep thinking on and put it in
``content``) and removes a code fence around a JSON answer when ``response_format`` asks for
JSON, so mem0's JSON parsing sees JSON; :class:`ClawEmbedder.embed_batch` sends the whole list
as one call and the core splits it to the provider's batch limit (10 for DashScope
``text-embedding-v4``), ``EMBEDDING_CONCURRENCY`` requests at a time.

mem0's LLM reranker builds its own LLM through ``LlmFactory``: importing this module registers
the provider ``claw_llm`` there, and :func:`build_memory` points an ``llm_reranker`` at it.
What mem0 still does not let us reach: the ``llm`` and ``embedder`` blocks of a
``MemoryConfig`` (and mem0 1.x's ``graph_store.llm``) are validated against mem0's fixed
provider list, which ``register_provider`` does not extend, so they cannot name ``claw_llm``:
the LLM and embedder are swapped in after construction, and a 1.x graph store's own LLM keeps
the provider its config names. Other rerankers (Cohere, Hugging Face, ...) call their own
services.

Importing this module sets ``MEM0_TELEMETRY=False`` unless it is already set (mem0 reads it
when first imported), so mem0 does not phone home from gateways' private networks.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from typing import Any, Iterable, Mapping, Sequence

os.environ.setdefault("MEM0_TELEMETRY", "False")

import claw_llm  # noqa: E402

try:  # mem0 is optional: subclass its bases when it is there.
    from mem0.configs.embeddings.base import BaseEmbedderConfig
    from mem0.configs.llms.base import BaseLlmConfig
    from mem0.embeddings.base import EmbeddingBase as _EmbeddingBase
    from mem0.llms.base import LLMBase as _LLMBase

    HAVE_MEM0 = True
except ImportError:  # pragma: no cover - exercised only without the extra
    BaseEmbedderConfig = BaseLlmConfig = None  # type: ignore[assignment,misc]
    _EmbeddingBase = _LLMBase = object  # type: ignore[assignment,misc]
    HAVE_MEM0 = False

__all__ = ["ClawLLM", "ClawEmbedder", "build_memory", "HAVE_MEM0"]

#: The name under which :class:`ClawLLM` is registered in mem0's ``LlmFactory``.
PROVIDER = "claw_llm"

_FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL)


def _wants_json(response_format: Any) -> bool:
    kind = response_format.get("type") if isinstance(response_format, Mapping) else response_format
    return kind in ("json_object", "json_schema", "json")


def _strip_fence(text: str | None) -> str | None:
    """The inside of a code fence that wraps the whole text (```json … ```), else the text."""
    if not text:
        return text
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _client_for(config: Any, client: claw_llm.Client | None) -> claw_llm.Client | None:
    """A Client when the mem0 config names a key or base URL of its own; else None (the free
    functions, which read the environment at every call)."""
    if client is not None:
        return client
    api_key = getattr(config, "api_key", None)
    base_url = getattr(config, "openai_base_url", None)
    if api_key or base_url:
        return claw_llm.Client(base_url=base_url, api_key=api_key)
    return None


def _arguments(text: str | None) -> Any:
    """Tool-call arguments as a dict (models sometimes wrap the JSON in a code fence)."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        match = re.search(r"\{.*\}", text, re.DOTALL)
        if match:
            return json.loads(match.group(0))
        raise


class ClawLLM(_LLMBase):  # type: ignore[misc,valid-type]
    """A mem0 LLM that answers through claw_llm.

    Args:
        config: a mem0 ``BaseLlmConfig`` or dict (``model``, ``temperature``, ``max_tokens``,
            ``top_p``, ``api_key``, ``openai_base_url``), or None.
        model: the chat model (default: ``config.model``, else ``LLM_MODEL_ID``).
        client: a :class:`claw_llm.Client` to use instead of the environment.
        timeout_ms, max_retries: per-call options (defaults: ``LLM_TIMEOUT_MS``, ``LLM_MAX_RETRIES``).
    """

    def __init__(
        self,
        config: Any = None,
        *,
        model: str | None = None,
        client: claw_llm.Client | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        if HAVE_MEM0:
            super().__init__(config)
        else:
            self.config = config
        cfg_model = getattr(self.config, "model", None)
        self.model: str | None = model or cfg_model or os.environ.get("LLM_MODEL_ID", "").strip() or None
        if HAVE_MEM0 and self.model and not cfg_model:
            self.config.model = self.model
        self.client = _client_for(self.config, client)
        self.timeout_ms = timeout_ms
        self.max_retries = max_retries

    def _params(self, messages: Sequence[Mapping[str, Any]], kwargs: dict[str, Any]) -> dict[str, Any]:
        if HAVE_MEM0 and self.model:
            # mem0's own rules: temperature/max_tokens/top_p from the config, filtered for
            # reasoning models, plus whatever mem0 passed.
            params = self._get_supported_params(messages=messages, **kwargs)
            params.pop("messages", None)
            return {k: v for k, v in params.items() if v is not None}
        return dict(kwargs)

    def generate_response(
        self,
        messages: list[dict[str, Any]],
        response_format: Any = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = "auto",
        **kwargs: Any,
    ) -> Any:
        """Sends ``messages`` and returns the reply's content string, or, when ``tools`` are
        given, ``{"content": str | None, "tool_calls": [{"name", "arguments": dict}]}``."""
        params = self._params(messages, kwargs)
        if response_format:
            params["response_format"] = response_format
        if tools:
            params["tools"] = tools
            params["tool_choice"] = tool_choice
        params["reasoning"] = "split"
        call = self.client.call_specific_model if self.client is not None else claw_llm.call_specific_model
        reply = call(self.model, messages, timeout_ms=self.timeout_ms, max_retries=self.max_retries, **params)
        message = (reply.get("choices") or [{}])[0].get("message") or {}
        content = message.get("content")
        if _wants_json(response_format):
            content = _strip_fence(content)
        if not tools:
            return content
        return {
            "content": content,
            "tool_calls": [
                {"name": tc["function"]["name"], "arguments": _arguments(tc["function"].get("arguments"))}
                for tc in message.get("tool_calls") or []
            ],
        }


class ClawEmbedder(_EmbeddingBase):  # type: ignore[misc,valid-type]
    """A mem0 embedder that embeds through claw_llm.

    Args:
        config: a mem0 ``BaseEmbedderConfig`` or dict (``model``, ``embedding_dims``,
            ``api_key``, ``openai_base_url``), or None.
        model: the embedding model (default: ``config.model``, else ``EMBEDDING_MODEL_ID``).
        dims: vector size sent as ``dimensions`` (default: ``config.embedding_dims``, else
            ``EMBEDDING_DIMS``; when neither is set the model's own size is used).
        client: a :class:`claw_llm.Client` to use instead of the environment.
        batch_size: inputs per request for :meth:`embed_batch` (default: ``EMBEDDING_BATCH_SIZE``,
            else the model's known limit, else 2048).
    """

    def __init__(
        self,
        config: Any = None,
        *,
        model: str | None = None,
        dims: int | None = None,
        client: claw_llm.Client | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        if HAVE_MEM0 and isinstance(config, dict):
            config = BaseEmbedderConfig(**config)
        if HAVE_MEM0:
            super().__init__(config)
        else:
            self.config = config
        self.model: str | None = (
            model or getattr(self.config, "model", None) or os.environ.get("EMBEDDING_MODEL_ID", "").strip() or None
        )
        env_dims = os.environ.get("EMBEDDING_DIMS", "").strip()
        self.dims: int | None = dims or getattr(self.config, "embedding_dims", None) or (int(env_dims) if env_dims else None)
        if self.config is not None:
            self.config.model = self.model
            self.config.embedding_dims = self.dims
        self.client = _client_for(self.config, client)
        self.timeout_ms = timeout_ms
        self.max_retries = max_retries
        self.batch_size = batch_size

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        fn = self.client.embed_vectors if self.client is not None else claw_llm.embed_vectors
        extra: dict[str, Any] = {"batch_size": self.batch_size} if self.batch_size is not None else {}
        return fn(
            self.model, texts, dimensions=self.dims, timeout_ms=self.timeout_ms, max_retries=self.max_retries, **extra
        )

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        """The embedding of ``text`` (newlines flattened, as mem0's OpenAI embedder does)."""
        return self._vectors([text.replace("\n", " ")])[0]

    def embed_batch(self, texts: Iterable[str], memory_action: str | None = "add") -> list[list[float]]:
        """Embeddings of many texts in input order: one call, which the core sends in requests of
        the provider's batch size, ``EMBEDDING_CONCURRENCY`` at a time, under one deadline."""
        flat = [t.replace("\n", " ") for t in texts]
        return self._vectors(flat) if flat else []


def _register_provider() -> None:
    """Makes ``claw_llm`` an ``LlmFactory`` provider (what mem0's LLM reranker builds from)."""
    try:
        from mem0.utils.factory import LlmFactory
    except ImportError:  # pragma: no cover - mem0 without the factory
        return
    register = getattr(LlmFactory, "register_provider", None)
    if register is not None:
        register(PROVIDER, f"{__name__}.ClawLLM", BaseLlmConfig)


if HAVE_MEM0:
    _register_provider()


def _reranker_block(reranker: Any, llm_model: str | None) -> dict[str, Any] | None:
    """The ``reranker`` block of a mem0 config with an LLM reranker going through claw_llm.

    ``True`` or ``"llm"``: mem0's ``llm_reranker`` on :class:`ClawLLM` with the chat model; a
    mem0 ``{"provider", "config"}`` block: kept, and when it is an ``llm_reranker`` its LLM (or
    its nested ``llm`` block) becomes ``claw_llm``; other providers are left as they are."""
    if reranker is None or reranker is False:
        return None
    if reranker is True or reranker == "llm":
        reranker = {"provider": "llm_reranker", "config": {}}
    if not isinstance(reranker, Mapping):
        raise TypeError(f"reranker must be True, 'llm' or a mem0 reranker block, got {type(reranker).__name__}")
    block = {**reranker, "config": dict(reranker.get("config") or {})}
    if block.get("provider") != "llm_reranker":
        return block
    config = block["config"]
    nested = config.get("llm")
    if isinstance(nested, Mapping):
        nested_config = dict(nested.get("config") or {})
        if llm_model and not nested_config.get("model") and not config.get("model"):
            nested_config["model"] = llm_model
        config["llm"] = {**nested, "provider": PROVIDER, "config": nested_config}
    else:
        if llm_model and not config.get("model"):
            config["model"] = llm_model
    config["provider"] = PROVIDER
    return block


def build_memory(
    config: Mapping[str, Any] | None = None,
    *,
    llm: ClawLLM | None = None,
    embedder: ClawEmbedder | None = None,
    llm_model: str | None = None,
    embedding_model: str | None = None,
    embedding_dims: int | None = None,
    client: claw_llm.Client | None = None,
    collection_name: str = "mem0",
    vector_store: Mapping[str, Any] | None = None,
    qdrant_path: str | None = None,
    history_db_path: str | None = None,
    reranker: Any = None,
    async_memory: bool = False,
    **extra: Any,
) -> Any:
    """Builds a ``mem0.Memory`` whose LLM and embedder are claw_llm's.

    Args:
        config: an existing mem0 config dict (what ``Memory.from_config`` takes): its vector
            store, history db, graph store, reranker and other fields are kept; only its ``llm``
            and ``embedder`` are replaced (their ``model`` / ``embedding_dims`` become the
            defaults of claw_llm's).
        llm, embedder: ready instances (default: built from the environment and the
            ``llm_model`` / ``embedding_model`` / ``embedding_dims`` / ``client`` arguments).
        embedding_dims: vector size of the store (default: ``EMBEDDING_DIMS``; when unset,
            one embedding is requested now to learn it).
        collection_name: the vector store collection (when no vector store is given).
        vector_store: a full mem0 ``vector_store`` block (``{"provider", "config"}``) to use
            instead of the default local Qdrant; its ``embedding_model_dims`` is filled in.
        qdrant_path: directory of the default local Qdrant (default: in memory, nothing kept).
        history_db_path: mem0's SQLite history (default: mem0's, ``~/.mem0/history.db``).
        reranker: ``True`` (or ``"llm"``) for mem0's LLM reranker on claw_llm with the chat
            model, or a mem0 ``reranker`` block; an ``llm_reranker`` block is pointed at
            claw_llm, other providers are kept as they are.
        async_memory: build a ``mem0.AsyncMemory`` instead (its calls run ours in threads,
            which release the GIL while they wait).
        **extra: other ``MemoryConfig`` fields (``custom_instructions``, ``version``, ...).

    Returns:
        ``mem0.Memory`` (or ``mem0.AsyncMemory``): ``add``/``search``/... go through claw_llm.

    Raises:
        ImportError: mem0 is not installed (``pip install 'claw-llm[mem0]'``).
    """
    if not HAVE_MEM0:
        raise ImportError("claw_llm.mem0.build_memory needs mem0: pip install 'claw-llm[mem0]'")
    from mem0 import AsyncMemory, Memory

    user = dict(config or {})
    user_llm = dict((user.pop("llm", None) or {}).get("config") or {})
    user_embedder = dict((user.pop("embedder", None) or {}).get("config") or {})
    llm = llm or ClawLLM(model=llm_model or user_llm.get("model"), client=client)
    embedder = embedder or ClawEmbedder(
        model=embedding_model or user_embedder.get("model"),
        dims=embedding_dims or user_embedder.get("embedding_dims"),
        client=client,
    )
    dims = embedding_dims or embedder.dims or len(embedder.embed("dimension probe"))

    user_store = user.pop("vector_store", None)
    if vector_store is None:
        vector_store = user_store
    if vector_store is None:
        store_config: dict[str, Any] = {"collection_name": collection_name, "embedding_model_dims": dims}
        if qdrant_path is None:
            from qdrant_client import QdrantClient

            store_config["client"] = QdrantClient(location=":memory:")
        else:
            store_config["path"] = qdrant_path
        vector_store = {"provider": "qdrant", "config": store_config}
    else:
        vector_store = {**vector_store, "config": {"embedding_model_dims": dims, **(vector_store.get("config") or {})}}

    user_reranker = user.pop("reranker", None)
    reranker = _reranker_block(user_reranker if reranker is None else reranker, llm.model)

    # Placeholders that satisfy mem0's validation; replaced below and never called. They point
    # at a closed local port so a stray use fails at once instead of reaching any service.
    placeholder = {"api_key": "claw-llm-placeholder", "openai_base_url": "http://127.0.0.1:9/claw-llm-placeholder"}
    memory_config: dict[str, Any] = {
        **user,
        "llm": {"provider": "openai", "config": {"model": llm.model or "claw-llm", **placeholder}},
        "embedder": {"provider": "openai", "config": {"model": embedder.model or "claw-llm", "embedding_dims": dims, **placeholder}},
        "vector_store": vector_store,
        **extra,
    }
    if reranker is not None:
        memory_config["reranker"] = reranker
    if history_db_path is not None:
        memory_config["history_db_path"] = history_db_path
    with warnings.catch_warnings():
        # mem0 asks the in-memory Qdrant for payload indexes, which it does not need.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
        memory = (AsyncMemory if async_memory else Memory).from_config(memory_config)
    memory.llm = llm
    memory.embedding_model = embedder
    return memory
