"""The API's first load of the base, begun by `rental serve` before the app's modules are imported.

Loading the current snapshot and making its first eligibility pass is mostly DuckDB copying the
prepared base into memory, which runs outside the interpreter's lock: begun in a thread of its
own as soon as the database is migrated, it overlaps the second or so the process spends
importing FastAPI, the routers and the pages. The app's start-up waits for it before uvicorn
listens, as it did when it made the load itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class WarmUp:
    """One load of the base in a thread; `wait` returns once it is over, raising what it
    raised (a missing base is the caller's to report)."""

    def __init__(self, load: Callable[[], object]) -> None:
        self._load = load
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="warm-up", daemon=True)

    @classmethod
    def begin(cls) -> WarmUp:
        # The engine's modules are imported here, not in the thread: a thread importing them
        # while this one imports the app would wait on the modules this one is in the middle of.
        from segmentation import runtime

        warm = cls(runtime.warm_up)
        warm._thread.start()
        return warm

    def _run(self) -> None:
        try:
            self._load()
        except BaseException as exc:  # handed to the thread that waits
            self._error = exc

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
