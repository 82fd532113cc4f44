"""The process's engine over the CURRENT snapshot, swapped when a refresh changes CURRENT."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from datasets import snapshot as snap
from kit.settings import get_settings
from segmentation.eligibility import Eligibility
from segmentation.engine import Engine


@dataclass(frozen=True)
class Segmenter:
    engine: Engine
    eligibility: Eligibility

    @property
    def version(self) -> str:
        return self.engine.snapshot.version


_lock = threading.Lock()
_state: dict[Path, tuple[str, Segmenter]] = {}


def current() -> Segmenter:
    """The segmenter of the current snapshot; the first call loads it (seconds for 10M rows)."""
    s = get_settings()
    root = s.base_dir.resolve()
    pointer = root / "CURRENT"
    version = pointer.read_text().strip() if pointer.exists() else ""
    cached = _state.get(root)
    if cached and cached[0] == version:
        return cached[1]
    with _lock:
        cached = _state.get(root)
        if cached and cached[0] == version:
            return cached[1]
        snapshot = snap.current(root)
        engine = Engine(snapshot, threads=s.duckdb_threads, memory_limit=s.duckdb_memory_limit)
        seg = Segmenter(engine, Eligibility(engine))
        old = _state.get(root)
        _state[root] = (snapshot.version, seg)
        if old:
            old[1].engine.close()
        return seg


def reset() -> None:
    with _lock:
        for _, seg in _state.values():
            seg.engine.close()
        _state.clear()
