"""Least-recently-used cache of image embeddings, bounded by bytes.

Keys name everything an embedding depends on (data, slice, window, target size,
contrast, model); values need an ``nbytes`` attribute (``ImageEmbedding`` has one).
Thread-safe: a worker fills it while the main thread may query it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable

DEFAULT_MAX_BYTES = 1 << 30


class EmbeddingCache:
    """LRU mapping key -> embedding whose total ``nbytes`` stays <= ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def keys(self) -> list:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._items)

    def get(self, key: Hashable):
        """The embedding for ``key`` (now most recently used) or None."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value) -> None:
        """Store ``value``; evict least recently used entries beyond ``max_bytes``. A value
        bigger than the whole budget is not stored."""
        size = int(value.nbytes)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= int(old.nbytes)
            if size > self.max_bytes:
                return
            self._items[key] = value
            self._nbytes += size
            while self._nbytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._nbytes -= int(evicted.nbytes)

    def get_or_compute(self, key: Hashable, compute: Callable[[], object]):
        """(embedding, computed) for ``key``, running ``compute()`` on a miss."""
        value = self.get(key)
        if value is not None:
            return value, False
        value = compute()
        self.put(key, value)
        return value, True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._nbytes = 0
