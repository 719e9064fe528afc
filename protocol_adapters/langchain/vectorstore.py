"""LangChain ``VectorStore`` over a T4DM store: :class:`T4DMVectorStore`.

Contracts:

* **Documents.** One document is one memory in the adapter's namespace: ``Document.id`` is
  the memory id, ``page_content`` its text, ``metadata`` its metadata. Metadata round-trips
  exactly (ints stay ints, nested objects stay nested, a user key ``"id"`` is plain
  metadata, never ``Document.id``); top-level keys starting with ``_t4dm_`` are reserved
  for the adapters and refused with :class:`t4dm_core.InvalidInputError`.
* **Writes** are upserts by id and atomic per call: on any error (bad metadata, a vector of
  the wrong dimension or holding NaN, an id given twice in one call) nothing is written.
  Overwriting an id keeps the old version in the engine's history, so ``as_of=`` searches
  still see it.
* **Scores** returned by ``similarity_search_with_score`` (and the relevance-score methods)
  are relevances in [0, 1], higher = more relevant: ``(1 + cosine) / 2``. Hence
  ``_select_relevance_score_fn`` is the identity and ``as_retriever(search_type=
  "similarity_score_threshold")`` thresholds on that value. ``similarity_search`` never
  thresholds.
* **Filters.** ``filter=`` takes the langchain-postgres Mongo-style dict (see
  :mod:`protocol_adapters.langchain._filters`), evaluated by the engine before ranking; or,
  like ``InMemoryVectorStore``, a callable ``Document -> bool``, evaluated in Python on
  over-fetched candidates (the adapter fetches more hits until ``k`` pass or the namespace
  is exhausted, up to 10,000 candidates), so prefer dict filters on large namespaces.
* **Time travel.** Every search method takes ``as_of=`` (a time, or a ``(valid_time,
  transaction_time)`` pair) and searches what the store believed then.
* **Embeddings.** With ``embedding=None`` the store's own embedder is used (the packaged
  all-MiniLM-L6-v2 when the adapter opens a new store); otherwise the given LangChain
  ``Embeddings`` computes every vector and the store is opened as a vectors-only store of
  that dimension. Records stored by other adapters without an embedding
  (``_t4dm_unembedded``) never appear in vector queries.
* **Thread-safety.** Every method may be called from several threads (the engine is
  thread-safe); the async methods run the engine call in a worker thread.
* **Lifetime.** :meth:`close` (or ``with``) closes a store the adapter opened; a shared
  ``store=`` stays open. A temporary store (``path=None``) is deleted on close. Data is as
  durable as the engine's writes (see :class:`t4dm_core.Options` ``sync``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from protocol_adapters._common import StoreBacked, StoreHandle, relevance_from_cosine, run_in_thread
from protocol_adapters.langchain._filters import RESERVED_PREFIX, vector_query_filter
from t4dm_core import Embedder, InvalidInputError, InvalidVectorError, Memory, Ranking, Store

if TYPE_CHECKING:
    from protocol_adapters.langchain.retriever import T4DMRetriever

__all__ = ["T4DMVectorStore", "document_from_memory"]

DEFAULT_NAMESPACE = "default"
MAX_CANDIDATES = 10_000  # the engine's largest k
_FIRST_OVERFETCH = 4
_MIN_CANDIDATES = 32
_DIMENSION_PROBE = "dimension probe"
_PROBE_ID = "namespace-probe"

DocumentPredicate = Callable[[Document], bool]


def document_from_memory(memory: Memory) -> Document:
    """The LangChain view of a memory: its id, text and user metadata (reserved keys removed)."""
    metadata = {key: value for key, value in memory.metadata.items() if not key.startswith(RESERVED_PREFIX)}
    return Document(page_content=memory.text or "", metadata=metadata, id=memory.id)


class _EngineEmbeddings(Embeddings):
    """A store's own embedder seen as LangChain ``Embeddings`` (lists of floats out)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return np.asarray(self.embedder.embed_documents(list(texts)), dtype=np.float64).tolist()

    def embed_query(self, text: str) -> list[float]:
        return np.asarray(self.embedder.embed_query(text), dtype=np.float64).tolist()


def _as_vector(values: Any) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidVectorError(f"embedding is not a numeric vector: {exc}") from None


class T4DMVectorStore(StoreBacked, VectorStore):
    """A LangChain vector store whose documents live in one namespace of a T4DM store.

    Args:
        embedding: LangChain ``Embeddings`` to embed texts and queries, or ``None`` to use
            the store's own embedder.
        path: store directory to open (``None`` = a temporary store deleted on close).
        store: an open :class:`t4dm_core.Store` to share; the caller closes it.
        namespace: the namespace holding this vector store's documents.

    A given ``embedding`` is called once at construction (``embed_query``) to learn its
    dimension.

    Raises:
        InvalidInputError: both ``path`` and ``store`` given; ``embedding=None`` on a store
            without an embedder; a bad namespace.
        DimensionMismatchError: a shared store's dimension differs from the embedding's.
        EmbedderMismatchError: the store at ``path`` was built for another dimension.
    """

    def __init__(self, embedding: Embeddings | None = None, *, path: str | os.PathLike[str] | None = None,
                 store: Store | None = None, namespace: str = DEFAULT_NAMESPACE) -> None:
        dim = None
        if embedding is not None:
            if not (hasattr(embedding, "embed_documents") and hasattr(embedding, "embed_query")):
                raise InvalidInputError(f"embedding must be LangChain Embeddings, got {type(embedding).__name__}")
            dim = len(embedding.embed_query(_DIMENSION_PROBE))
        self._handle = StoreHandle(path=path, store=store, dim=dim)
        try:
            self.store.get(_PROBE_ID, namespace=namespace)  # O(1); the engine validates the namespace
            if embedding is None:
                if self.store.embedder is None:
                    raise InvalidInputError(f"the store at {self.store.path} has no embedder of its own "
                                            "(it was built from vectors); pass embedding=")
                self._embeddings: Embeddings = _EngineEmbeddings(self.store.embedder)
            else:
                self._embeddings = embedding
        except BaseException:
            self._handle.close()
            raise
        self._embeds_writes = embedding is not None
        self._namespace = namespace

    # ------------------------------------------------------------ properties, lifetime
    @property
    def embeddings(self) -> Embeddings:
        """The embedding used for texts and queries (the store's own embedder, wrapped, if none was given)."""
        return self._embeddings

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                   metadatas: list[dict[str, Any]] | None = None, *, ids: list[str] | None = None,
                   **kwargs: Any) -> Self:
        """A new adapter (``path=``, ``store=``, ``namespace=`` taken from ``kwargs``) holding ``texts``."""
        options = {name: kwargs.pop(name) for name in ("path", "store", "namespace") if name in kwargs}
        vectorstore = cls(embedding, **options)
        try:
            vectorstore.add_texts(texts, metadatas, ids=ids, **kwargs)
        except BaseException:
            vectorstore.close()
            raise
        return vectorstore

    # ------------------------------------------------------------ writes and reads by id
    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Upsert ``documents`` atomically; returns their ids.

        ``ids=`` (a list as long as ``documents``) wins over ``Document.id``; a missing id
        (``None`` in both) becomes a fresh uuid4 string. The input documents are not modified.
        One id given twice in one call raises :class:`t4dm_core.DuplicateIdError` (where
        ``InMemoryVectorStore`` would silently keep the last), and nothing is written.
        """
        return self.store.put_many(self._memories(documents, kwargs.get("ids")))

    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Upsert ``texts`` (with ``metadatas`` and ``ids``, each one per text when given); returns the ids.

        Unlike the base class, which silently drops texts beyond a shorter ``ids`` list,
        mismatched lengths raise :class:`t4dm_core.InvalidInputError`.
        """
        text_list = list(texts)
        if metadatas is not None and len(metadatas) != len(text_list):
            raise InvalidInputError(f"got {len(metadatas)} metadatas for {len(text_list)} texts")
        metadata_list = metadatas if metadatas is not None else [{}] * len(text_list)
        docs = [Document(page_content=text, metadata=metadata) for text, metadata in
                zip(text_list, metadata_list, strict=True)]
        return self.add_documents(docs, ids=ids, **kwargs)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents for ``ids`` in the requested order; missing ids are skipped."""
        memories = self.store.get_many(self._id_list(ids), namespace=self._namespace)
        return [document_from_memory(memory) for memory in memories if memory is not None]

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete ``ids`` (missing ones are ignored), or every record of the namespace when ``ids`` is None.

        ``ids=None`` follows the ``VectorStore.delete`` contract ("delete all"), where
        ``InMemoryVectorStore`` deletes nothing. Atomic; the deleted versions stay visible to
        ``as_of=`` searches. Returns True.
        """
        targets = self.store.ids(namespace=self._namespace) if ids is None else self._id_list(ids)
        self.store.delete(targets, namespace=self._namespace)
        return True

    def _memories(self, documents: Iterable[Document], ids: Sequence[str | None] | None) -> list[Memory]:
        docs = list(documents)
        if ids is not None and (isinstance(ids, str) or len(ids) != len(docs)):
            raise InvalidInputError(f"ids must be a list of {len(docs)} ids, one per document, got {ids!r}")
        for doc in docs:
            reserved = sorted(key for key in doc.metadata if isinstance(key, str) and key.startswith(RESERVED_PREFIX))
            if reserved:
                raise InvalidInputError(f"metadata keys starting with {RESERVED_PREFIX!r} are reserved: {reserved}")
        chosen = [given if given is not None else doc.id if doc.id is not None else str(uuid.uuid4())
                  for given, doc in zip(ids if ids is not None else [None] * len(docs), docs, strict=True)]
        vectors: list[np.ndarray | None] = [None] * len(docs)
        if self._embeds_writes and docs:
            embedded = self._embeddings.embed_documents([doc.page_content for doc in docs])
            if len(embedded) != len(docs):
                raise InvalidInputError(f"the embedding returned {len(embedded)} vectors for {len(docs)} texts")
            vectors = [_as_vector(vector) for vector in embedded]
        return [Memory(text=doc.page_content, id=doc_id, namespace=self._namespace, vector=vector,
                       metadata=doc.metadata)
                for doc, doc_id, vector in zip(docs, chosen, vectors, strict=True)]

    @staticmethod
    def _id_list(ids: Iterable[str]) -> list[str]:
        if isinstance(ids, str):
            raise InvalidInputError(f"ids must be a list of ids, got the string {ids!r}")
        return list(ids)

    # ------------------------------------------------------------ vector queries
    def _query(self, vector: np.ndarray, k: int, filter: Any, as_of: Any) -> list[tuple[Memory, float]]:
        """The ``k`` best (memory, cosine) pairs for ``vector``, best first, after filtering."""
        if not callable(filter):
            hits = self.store.search(vector, k, namespace=self._namespace, filter=vector_query_filter(filter),
                                      as_of=as_of)
            return [(hit.memory, hit.score) for hit in hits]
        predicate: DocumentPredicate = filter
        engine_filter = vector_query_filter(None)
        want = min(MAX_CANDIDATES, max(k * _FIRST_OVERFETCH, _MIN_CANDIDATES))
        while True:
            hits = self.store.search(vector, want, namespace=self._namespace, filter=engine_filter, as_of=as_of)
            kept = [(hit.memory, hit.score) for hit in hits if predicate(document_from_memory(hit.memory))]
            if len(kept) >= k or len(hits) < want or want == MAX_CANDIDATES:
                return kept[:k]
            want = min(MAX_CANDIDATES, want * _FIRST_OVERFETCH)

    def _embed_query(self, query: str) -> np.ndarray:
        return _as_vector(self._embeddings.embed_query(query))

    def _scored(self, vector: np.ndarray, k: int, filter: Any, as_of: Any) -> list[tuple[Document, float]]:
        return [(document_from_memory(memory), relevance_from_cosine(score))
                for memory, score in self._query(vector, k, filter, as_of)]

    def _mmr(self, vector: np.ndarray, k: int, fetch_k: int, lambda_mult: float, filter: Any,
             as_of: Any) -> list[Document]:
        candidates = self._query(vector, fetch_k, filter, as_of)
        stored = [memory.vector for memory, _ in candidates]
        chosen = maximal_marginal_relevance(vector, stored, lambda_mult=lambda_mult, k=k)  # type: ignore[arg-type]
        return [document_from_memory(candidates[index][0]) for index in chosen]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Any = None, *, as_of: Any = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` documents most similar to ``query`` with relevances in [0, 1] (``(1 + cos) / 2``), best first."""
        return self._scored(self._embed_query(query), k, filter, as_of)

    def similarity_search_with_score_by_vector(self, embedding: Sequence[float], k: int = 4, filter: Any = None, *,
                                               as_of: Any = None, **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest to ``embedding`` with relevances in [0, 1], best first."""
        return self._scored(_as_vector(embedding), k, filter, as_of)

    def similarity_search(self, query: str, k: int = 4, filter: Any = None, *, as_of: Any = None,
                          **kwargs: Any) -> list[Document]:
        """The ``k`` documents most similar to ``query``, best first (no score threshold)."""
        return [doc for doc, _ in self._scored(self._embed_query(query), k, filter, as_of)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: Any = None, *,
                                    as_of: Any = None, **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest to ``embedding``, best first (no score threshold)."""
        return [doc for doc, _ in self._scored(_as_vector(embedding), k, filter, as_of)]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: Any = None, *, as_of: Any = None, **kwargs: Any) -> list[Document]:
        """``k`` documents picked by maximal marginal relevance among the ``fetch_k`` most similar.

        Uses the stored (unit) vectors and ``langchain_core``'s ``maximal_marginal_relevance``;
        ``lambda_mult`` 1 = pure relevance, 0 = maximal diversity.
        """
        return self._mmr(self._embed_query(query), k, fetch_k, lambda_mult, filter, as_of)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: Any = None, *,
                                                as_of: Any = None, **kwargs: Any) -> list[Document]:
        """Maximal-marginal-relevance search around ``embedding`` (see :meth:`max_marginal_relevance_search`)."""
        return self._mmr(_as_vector(embedding), k, fetch_k, lambda_mult, filter, as_of)

    def hybrid_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None, *, as_of: Any = None,
                      ranking: Ranking | None = None) -> list[Document]:
        """The engine's hybrid ranking: vector and BM25 candidates, graph expansion and priors, fused.

        ``ranking`` (a :class:`t4dm_core.Ranking`) weighs or switches off each signal; the
        default is the engine's. Only dict filters are accepted (they run inside the engine).
        Documents come best first; the fused scores are not relevances, so none are returned.
        """
        if callable(filter):
            raise InvalidInputError("hybrid_search takes a dict filter, not a callable")
        hits = self.store.search(query, k, namespace=self._namespace, filter=vector_query_filter(filter),
                                 as_of=as_of, query_vector=self._embed_query(query),
                                 **({"mode": "hybrid"} if ranking is None else {"ranking": ranking}))
        return [document_from_memory(hit.memory) for hit in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Identity: the search methods already return relevances in [0, 1] (``(1 + cosine) / 2``)."""
        return _identity

    def as_retriever(self, **kwargs: Any) -> T4DMRetriever:
        """A :class:`~protocol_adapters.langchain.T4DMRetriever` over this store.

        Accepts everything ``VectorStore.as_retriever`` does (``search_type``,
        ``search_kwargs``, ``tags``, ...) plus the retriever's own fields (``k``, ``filter``,
        ``as_of``, ``search_type="graph"``, ...). ``T4DMRetriever`` is a
        ``VectorStoreRetriever``, so code written against the base class keeps working.
        """
        from protocol_adapters.langchain.retriever import T4DMRetriever

        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return T4DMRetriever(vectorstore=self, tags=tags, **kwargs)

    # ------------------------------------------------------------ async (engine calls in a worker thread)
    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        return await run_in_thread(self.add_documents, documents, **kwargs)

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await run_in_thread(self.get_by_ids, ids)

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        return await run_in_thread(self.delete, ids, **kwargs)

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return await run_in_thread(self.similarity_search, query, k, **kwargs)

    async def asimilarity_search_with_score(self, *args: Any, **kwargs: Any) -> list[tuple[Document, float]]:
        return await run_in_thread(self.similarity_search_with_score, *args, **kwargs)

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                           **kwargs: Any) -> list[Document]:
        return await run_in_thread(self.similarity_search_by_vector, embedding, k, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, **kwargs: Any) -> list[Document]:
        return await run_in_thread(self.max_marginal_relevance_search, query, k, fetch_k, lambda_mult, **kwargs)

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                       lambda_mult: float = 0.5, **kwargs: Any) -> list[Document]:
        return await run_in_thread(self.max_marginal_relevance_search_by_vector, embedding, k, fetch_k, lambda_mult,
                                   **kwargs)


def _identity(score: float) -> float:
    return score
