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

#: Texts per embeddings request in :meth:`ClawEmbedder.embed_batch`.
EMBED_BATCH = 100


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
        call = self.client.call_specific_model if self.client is not None else claw_llm.call_specific_model
        reply = call(self.model, messages, timeout_ms=self.timeout_ms, max_retries=self.max_retries, **params)
        message = (reply.get("choices") or [{}])[0].get("message") or {}
        if not tools:
            return message.get("content")
        return {
            "content": message.get("content"),
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

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        fn = self.client.embed_vectors if self.client is not None else claw_llm.embed_vectors
        return fn(self.model, texts, dimensions=self.dims, timeout_ms=self.timeout_ms, max_retries=self.max_retries)

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        """The embedding of ``text`` (newlines flattened, as mem0's OpenAI embedder does)."""
        return self._vectors([text.replace("\n", " ")])[0]

    def embed_batch(self, texts: Iterable[str], memory_action: str | None = "add") -> list[list[float]]:
        """Embeddings of many texts, ``EMBED_BATCH`` per request, in input order."""
        flat = [t.replace("\n", " ") for t in texts]
        out: list[list[float]] = []
        for i in range(0, len(flat), EMBED_BATCH):
            out.extend(self._vectors(flat[i : i + EMBED_BATCH]))
        return out


def build_memory(
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
    async_memory: bool = False,
    **config: Any,
) -> Any:
    """Builds a ``mem0.Memory`` whose LLM and embedder are claw_llm's.

    Args:
        llm, embedder: ready instances (default: built from the environment and the
            ``llm_model`` / ``embedding_model`` / ``embedding_dims`` / ``client`` arguments).
        embedding_dims: vector size of the store (default: ``EMBEDDING_DIMS``; when unset,
            one embedding is requested now to learn it).
        collection_name: the vector store collection.
        vector_store: a full mem0 ``vector_store`` block (``{"provider", "config"}``) to use
            instead of the default local Qdrant; its ``embedding_model_dims`` is filled in.
        qdrant_path: directory of the default local Qdrant (default: in memory, nothing kept).
        history_db_path: mem0's SQLite history (default: mem0's, ``~/.mem0/history.db``).
        async_memory: build a ``mem0.AsyncMemory`` instead (its calls run ours in threads,
            which release the GIL while they wait).
        **config: other ``MemoryConfig`` fields (``custom_instructions``, ``version``, ...).

    Returns:
        ``mem0.Memory`` (or ``mem0.AsyncMemory``): ``add``/``search``/... go through claw_llm.

    Raises:
        ImportError: mem0 is not installed (``pip install 'claw-llm[mem0]'``).
    """
    if not HAVE_MEM0:
        raise ImportError("claw_llm.mem0.build_memory needs mem0: pip install 'claw-llm[mem0]'")
    from mem0 import AsyncMemory, Memory

    llm = llm or ClawLLM(model=llm_model, client=client)
    embedder = embedder or ClawEmbedder(model=embedding_model, dims=embedding_dims, client=client)
    dims = embedding_dims or embedder.dims or len(embedder.embed("dimension probe"))

    if vector_store is None:
        store_config: dict[str, Any] = {"collection_name": collection_name, "embedding_model_dims": dims}
        if qdrant_path is None:
            from qdrant_client import QdrantClient

            store_config["client"] = QdrantClient(location=":memory:")
        else:
            store_config["path"] = qdrant_path
        vector_store = {"provider": "qdrant", "config": store_config}
    else:
        vector_store = {**vector_store, "config": {"embedding_model_dims": dims, **vector_store.get("config", {})}}

    # Placeholders that satisfy mem0's validation; replaced below and never called. They point
    # at a closed local port so a stray use fails at once instead of reaching any service.
    placeholder = {"api_key": "claw-llm-placeholder", "openai_base_url": "http://127.0.0.1:9/claw-llm-placeholder"}
    memory_config: dict[str, Any] = {
        "llm": {"provider": "openai", "config": {"model": llm.model or "claw-llm", **placeholder}},
        "embedder": {"provider": "openai", "config": {"model": embedder.model or "claw-llm", "embedding_dims": dims, **placeholder}},
        "vector_store": vector_store,
        **config,
    }
    if history_db_path is not None:
        memory_config["history_db_path"] = history_db_path
    with warnings.catch_warnings():
        # mem0 asks the in-memory Qdrant for payload indexes, which it does not need.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
        memory = (AsyncMemory if async_memory else Memory).from_config(memory_config)
    memory.llm = llm
    memory.embedding_model = embedder
    return memory
