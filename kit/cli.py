"""Command-line errors: a clear one-line message and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from kit.errors import RentalError
from kit.redact import redact
from kit.settings import variable

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    sys.stderr.write(f"error: {redact(message)}\n")
    raise SystemExit(code)


def _problem(model: str, error: Any) -> str:
    """One problem of a validation error, named as the user set it (a setting: its
    environment variable)."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    if model == "Settings":
        name = variable(error["loc"])
        return f"{name}: {msg}" if name and not msg.startswith("RENTAL_") else msg
    where = ".".join(map(str, error["loc"]))
    return f"{where}: {msg}" if where else msg


def friendly_errors(fn: F) -> F:
    """Turn the errors a user can fix into `error: ...` on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RentalError as exc:
            fail(exc.detail)
        except ValidationError as exc:  # never the value: it may be a password
            fail("; ".join(_problem(exc.title, e) for e in exc.errors()))
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            fail(f"cannot read {exc.filename}: {exc.strerror}")
        except UnicodeDecodeError:
            fail("the file is not UTF-8 text")
        except ValueError as exc:  # malformed option values (dates, numbers)
            fail(str(exc))

    return wrapper  # type: ignore[return-value]
