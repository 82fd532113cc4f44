"""API ready after start: from launching `rental serve` to its first answered `POST /v1/quotes`
(the base loaded and its first eligibility pass made: the server listens once its start-up,
which loads them, is over), over a 10M base. Floor in the same run: a process importing the app.

Starts in the same run, each a new process on the same home: `cold`, with no prepared base (it
prepares it: what the first start on a new snapshot pays when `rental base generate/refresh` did
not), then `cached`, from the prepared base (every later start), and with `--tree DIR` the same
launch of another source tree's code just before each (e.g. the branch point, exported:
`git archive <commit> | tar -x -C DIR`), `--repeat N` rounds of those pairs (medians). The
bench's home links the base's files read-only (`--base DIR`, default the cached base of
bench/results)."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from bench.common import RENTAL, RESULTS, emit, ensure_base
from bench.http import CRITERIA, api_key, free_port
from datasets import snapshot


def linked_home(rows: int, base: Path) -> Path:
    """A home of this bench whose base links `base`'s current snapshot files (never written)."""
    source = snapshot.current(base)
    home = RESULTS / f"startup-{rows}"
    target = home / "base" / source.version
    if not target.exists():
        target.mkdir(parents=True)
        for name in (snapshot.ATTRIBUTES, snapshot.CONTACTS):
            os.symlink(source.path / name, target / name)
        shutil.copy2(source.path / snapshot.MANIFEST, target / snapshot.MANIFEST)
        snapshot.set_current(home / "base", source.version)
    return home


def ready_after(env: dict[str, str], key: str) -> float:
    """Seconds from launching the server to its first answered quote."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [RENTAL, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        ) as client:
            while True:
                try:
                    client.post("/v1/quotes", json=CRITERIA).raise_for_status()
                    return round(time.perf_counter() - started, 2)
                except httpx.TransportError:
                    if server.poll() is not None or time.perf_counter() - started > 300:
                        raise SystemExit("server did not start") from None
                    time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(30)


def import_floor(env: dict[str, str]) -> float:
    """Seconds for a process to import the app: what any start pays before loading a base."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import rental.app"], env=env, check=True)
    return round(time.perf_counter() - started, 2)


def run(rows: int, base: Path | None, tree: Path | None, repeat: int = 1) -> dict[str, Any]:
    """The cold start first (it prepares the base), then `repeat` rounds of the import floor and
    a start from the prepared base, `tree`'s then this code's (the machine is shared: each pair
    sees about the same load); medians."""
    home = linked_home(rows, base or ensure_base(rows) / "base")
    env = dict(os.environ, RENTAL_HOME=str(home), RENTAL_DAILY_QUOTE_BUDGET="1000000")
    key = api_key(env)  # also creates and migrates the home's database
    out: dict[str, Any] = {"rows": rows, "load_before": round(os.getloadavg()[0], 2)}
    shutil.rmtree(home / "cache", ignore_errors=True)
    out["cold_s"] = ready_after(env, key)  # prepares the base
    starts: dict[str, list[float]] = {"import_app_s": [], "cached_s": []}
    for _ in range(repeat):
        if tree is not None:  # the other tree's, on the same prepared base
            other = _on(env, tree)
            starts.setdefault(f"import_app_{tree.name}_s", []).append(import_floor(other))
            starts.setdefault(f"tree_{tree.name}_s", []).append(ready_after(other, key))
        starts["import_app_s"].append(import_floor(env))
        starts["cached_s"].append(ready_after(env, key))
    for name, times in starts.items():
        out[name] = round(statistics.median(times), 2)
        if repeat > 1:
            out[name.removesuffix("_s") + "_runs"] = times
    out["cached_over_cold"] = round(out["cached_s"] / out["cold_s"], 3)
    if tree is not None:
        out["cached_over_tree"] = round(out["cached_s"] / out[f"tree_{tree.name}_s"], 3)
    out["load_after"] = round(os.getloadavg()[0], 2)
    out["target_s"] = 2 if rows == 10_000_000 else None
    return out


def _on(env: dict[str, str], tree: Path) -> dict[str, str]:
    """`env` running another source tree's code."""
    return dict(env, PYTHONPATH=str(tree.resolve()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--base", type=Path, help="a base directory to link (default: generated)")
    ap.add_argument("--tree", type=Path, help="another source tree to time too (e.g. main)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of starts (medians)")
    args = ap.parse_args()
    emit(f"startup_{args.rows}", run(args.rows, args.base, args.tree, args.repeat))


if __name__ == "__main__":
    main()
