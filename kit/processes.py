"""Processes of this machine, as the service's own supervisors see them."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
