"""Shared helpers: bases cached under bench/results/, timing, process-tree memory."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RENTAL = str(Path(sys.executable).with_name("rental"))


def home(rows: int) -> Path:
    return RESULTS / f"home-{rows}"


def env_for(rows: int) -> dict[str, str]:
    return dict(os.environ, RENTAL_HOME=str(home(rows)))


def ensure_base(rows: int, seed: int = 1) -> Path:
    """A cached base of `rows` prospects (generated once, reused by later runs)."""
    h = home(rows)
    if not (h / "base" / "CURRENT").exists():
        subprocess.run(
            [RENTAL, "base", "generate", "--rows", str(rows), "--seed", str(seed)],
            env=env_for(rows),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return h


def p50_ms(fn: Callable[[], Any], repeat: int = 25, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 2)


class TreeMemory:
    """Peak memory of a process and all its descendants, sampled every 50 ms, as the sum of their
    proportional set sizes (PSS: a page shared by n processes counts 1/n in each, so shared
    libraries are not counted once per worker as a sum of RSS would)."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_full_info().pss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def emit(name: str, doc: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({name: doc}))


def cli(name: str, run: Callable[[int], dict[str, Any]], default_rows: int = 10_000_000) -> None:
    """`python -m bench.<name> [--rows N]`: run one benchmark and emit its JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=default_rows)
    rows = ap.parse_args().rows
    emit(f"{name}_{rows}", run(rows))
