"""Log lines as the services write them: JSON objects, one per line, naming the request (and
the order) they belong to, with phone-like text masked in messages and tracebacks alike; the
request id follows the work into a real worker."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from kit import logs
from rental.worker import configure
from tests.conftest import auth
from tests.service import free_port

RENTAL = [sys.executable, "-m", "rental"]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            assert proc.poll() is None, "the process stopped"
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def test_the_apis_lines_are_json_with_the_request_id_and_no_number(
    org_keys: dict[str, str], base_numbers: list[str], tmp_path: Path
) -> None:
    """`rental serve` as operators run it: a number in the path is masked in the access line,
    which names the caller's request id; an id that looks like a number is replaced."""
    nationals = ["0" + n[3:] for n in base_numbers if n.startswith("+33")][:2]
    port = free_port()
    out = tmp_path / "serve.log"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [*RENTAL, "serve", "--port", str(port)],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/v1/health", proc)
        mine = httpx.get(
            f"{url}/v1/orders/{nationals[0]}",
            headers={**auth(org_keys["acme"]), "X-Request-ID": "ops-check.1"},
        )
        theirs = httpx.get(
            f"{url}/v1/orders/{nationals[1]}",
            headers={**auth(org_keys["acme"]), "X-Request-ID": nationals[1]},
        )
    finally:
        _stop(proc)
    assert mine.headers["X-Request-ID"] == "ops-check.1"
    replaced = theirs.headers["X-Request-ID"]
    assert replaced != nationals[1]
    assert not any(c.isdigit() for c in replaced)
    text = out.read_text()
    lines = _json_lines(text)  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = {line.get("request_id"): line for line in lines if line["logger"] == "uvicorn.access"}
    assert "<redacted>" in access["ops-check.1"]["message"]
    assert "404" in access[replaced]["message"]
    assert access["ops-check.1"]["order_id"] == "<redacted>"  # the path's order id, masked
    for n in nationals:
        assert n not in text
        assert n[1:] not in text


def test_a_traceback_is_masked_and_a_bad_argument_never_loses_a_line(
    base_numbers: list[str],
) -> None:
    """The formatter itself masks: the exception's text, its traceback and the arguments."""
    number = base_numbers[0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.ops.traceback")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with logs.context(request="req-abc", order="an-order"):
            try:
                raise ValueError(f"no such recipient {number}")
            except ValueError:
                logger.exception("sending to %s failed", number)
            logger.warning("two placeholders %s %s", number)  # one argument short
    finally:
        logger.removeHandler(handler)
    failed, short = _json_lines(stream.getvalue())
    assert (failed["request_id"], failed["order_id"]) == ("req-abc", "an-order")
    assert failed["level"] == "ERROR"
    assert "Traceback" in failed["exception"]
    assert "ValueError" in failed["exception"]
    assert "<redacted>" in failed["message"]
    assert "<redacted>" in failed["exception"]
    assert short["message"].startswith("two placeholders")
    assert number not in stream.getvalue()
    assert number[3:] not in stream.getvalue()


def test_a_workers_task_names_the_request_that_enqueued_it(
    tmp_path: Path, base_numbers: list[str]
) -> None:
    """A task published while serving a request carries its id to a real `rental worker`,
    whose JSON line for the task's failure names it, with the number in the exception
    masked. The worker's /metrics answers too."""
    number = base_numbers[1]
    metrics_port = free_port()
    env = dict(os.environ, RENTAL_WORKER_METRICS_PORT=str(metrics_port))
    out = tmp_path / "worker.log"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [*RENTAL, "worker", "--concurrency", "2"],
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        app = configure()
        with logs.context(request="ops-task-7"):
            app.send_task("dispatch.feedback", args=([{number: "delivered"}], []))
        deadline = time.monotonic() + 90
        failure: dict[str, Any] | None = None
        while failure is None and time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text()
            lines = _json_lines(out.read_text())
            failure = next((x for x in lines if x.get("request_id") == "ops-task-7"), None)
            time.sleep(0.5)
        _wait_http(f"http://127.0.0.1:{metrics_port}/metrics", proc)
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        _stop(proc)
    assert failure is not None, out.read_text()
    assert failure["level"] == "ERROR"
    assert "TypeError" in failure["exception"]
    text = out.read_text()
    assert number not in text
    assert number[3:] not in text
    assert scraped.status_code == 200
