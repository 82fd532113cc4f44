"""Generation of a base: whole `rental base generate` process, wall time and peak memory of the
process tree; baseline in the same run: a row-by-row Faker generator (the naive approach)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from datetime import date

from bench.common import RENTAL, ROOT, TreeMemory, cli


def faker_rows_per_second(rows: int = 20_000) -> float:
    """Row-by-row generation with Faker, as a naive implementation would do it."""
    from faker import Faker

    fake = Faker("fr_FR")
    Faker.seed(1)
    t = time.perf_counter()
    out = []
    for _ in range(rows):
        out.append(
            {
                "sex": fake.random_element(("F", "M")),
                "birth_date": fake.date_of_birth(minimum_age=18, maximum_age=99),
                "postcode": fake.postcode(),
                "city": fake.city(),
                "phone": fake.phone_number(),
                "csp": fake.random_int(1, 8),
                "consent_date": fake.date_between(date(2020, 1, 1), date(2026, 1, 1)),
            }
        )
    return rows / (time.perf_counter() - t)


def _generate(rows: int, watch: bool) -> tuple[float, int]:
    """One whole `rental base generate` process: (wall seconds, peak PSS of its tree or 0)."""
    tmp = tempfile.mkdtemp(prefix="bench-gen-")
    try:
        t = time.perf_counter()
        proc = subprocess.Popen(
            # Generation alone: the engine's preparation that follows by default is what
            # bench.startup's cold start times.
            [RENTAL, "base", "generate", "--rows", str(rows), "--seed", "1", "--no-prepare"],
            # This tree's code, not whichever tree the venv's editable install points at.
            env={"RENTAL_HOME": tmp, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        mem = TreeMemory(proc.pid) if watch else None
        code = proc.wait()
        wall = time.perf_counter() - t
        peak = mem.stop() if mem else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if code:
        raise SystemExit(f"generation failed with exit code {code}")
    return wall, peak


def run(rows: int) -> dict[str, object]:
    # Timed and measured in separate runs: reading every process's memory map costs CPU.
    wall, _ = _generate(rows, watch=False)
    _, peak = _generate(rows, watch=True)
    naive = faker_rows_per_second()
    ours = rows / wall
    return {
        "rows": rows,
        "wall_s": round(wall, 2),
        "peak_rss_gb": round(peak / 2**30, 2),
        "rows_per_s": round(ours),
        "baseline_faker_rows_per_s": round(naive),
        "speedup_vs_faker": round(ours / naive, 1),
        "target": {"wall_s": 10, "peak_rss_gb": 2} if rows == 10_000_000 else None,
    }


def main() -> None:
    cli("generate", run)


if __name__ == "__main__":
    main()
