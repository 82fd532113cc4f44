"""Uploading an exclusion file: 5 million lines through `POST /v1/exclusion-files` on a real
`rental serve` process (a home of its own, SQLite), streamed from disk by the client. Printed:
the wall time, lines per second and the server's peak memory (PSS, sampled), against a baseline
measured in the same run on the same file: a plain process reading it line by line and
computing the opt-out HMAC of each line as it is (no parsing, no validation, no database).

`python -m bench.exclusions [--rows 5000000]` (rows: lines of the file)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bench.common import TreeMemory, cli
from bench.http import api_key, serving

LOAD = "/proc/loadavg"


def make_file(path: Path, lines: int, seed: int = 17) -> None:
    """French mobile numbers in the forms customers' files hold (0X XX XX XX XX, +33X...,
    0XXXXXXXXX), one line in a hundred unusable; written in blocks."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for start in range(0, lines, 500_000):
            n = min(500_000, lines - start)
            digits = rng.integers(10**7, 10**8, size=n)
            lead = rng.choice(np.array(["6", "7"]), size=n)
            form = rng.integers(0, 100, size=n)
            out = []
            for d, first, k in zip(digits.tolist(), lead.tolist(), form.tolist(), strict=True):
                nsn = f"{first}{'5' if first == '7' else ''}{d}"[:9]
                if k == 0:
                    out.append("n/a")
                elif k < 40:
                    national = "0" + nsn
                    out.append(" ".join(national[i : i + 2] for i in range(0, 10, 2)))
                elif k < 70:
                    out.append("+33" + nsn)
                else:
                    out.append("0" + nsn)
            f.write("\n".join(out) + "\n")


def baseline(path: Path) -> dict[str, float]:
    """Read the file and HMAC each line as it is, in a process of its own (its peak RSS)."""
    code = (
        "import sys, time, resource\n"
        "from datasets.vault import hmac_numbers\n"
        "t = time.perf_counter(); n = 0; batch = []\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    for line in f:\n"
        "        batch.append(line.strip())\n"
        "        if len(batch) == 65536:\n"
        "            n += len(hmac_numbers(b'k' * 32, batch)); batch = []\n"
        "n += len(hmac_numbers(b'k' * 32, batch))\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return {"seconds": round(float(out[0]), 2), "peak_rss_mb": round(int(out[1]) / 1024, 1)}


def chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(size):
            yield block


def upload(env: dict[str, str], path: Path) -> dict[str, object]:
    """The file streamed to a real `rental serve`, timed, with the server's memory sampled."""
    pids: list[int] = []
    with serving(env, api_key(env), timeout=600, started=pids) as client:
        memory = TreeMemory(pids[0])
        time.sleep(0.5)  # a few samples of the server at rest
        idle = memory.peak
        t = time.perf_counter()
        r = client.post(
            "/v1/exclusion-files",
            content=chunks(path),
            headers={"Content-Type": "text/plain"},
        )
        seconds = time.perf_counter() - t
        peak = memory.stop()
        r.raise_for_status()
        return {
            "seconds": round(seconds, 2),
            "server_peak_pss_mb": round(peak / 2**20, 1),
            "server_idle_pss_mb": round(idle / 2**20, 1),
            "answer": r.json(),
        }


def run(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-exclusions-") as tmp:
        home = Path(tmp)
        path = home / "customers.txt"
        make_file(path, rows)
        env = dict(
            os.environ,
            RENTAL_HOME=str(home / "home"),
            PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        )
        load_before = Path(LOAD).read_text().split()[:3]
        base = baseline(path)
        up = upload(env, path)
        load_after = Path(LOAD).read_text().split()[:3]
        return {
            "lines": rows,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "upload": up,
            "lines_per_second": round(rows / float(up["seconds"])),  # type: ignore[arg-type]
            "baseline_read_and_hmac": base,
            "ratio_to_baseline": round(float(up["seconds"]) / base["seconds"], 2),  # type: ignore[arg-type]
            "bench_peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "load_average_before_after": [load_before, load_after],
            "target": "5M lines in under 60 s, memory bounded",
        }


def main() -> None:
    cli("exclusions", run, default_rows=5_000_000)


if __name__ == "__main__":
    main()
