"""Errors of counting and drawing a segment that the caller can act on."""

from __future__ import annotations

from kit.errors import Conflict, NotFound


class ExclusionFileNotFound(NotFound):
    code = "exclusion_file_not_found"


class ExclusionFileNotReady(Conflict):
    code = "exclusion_file_not_ready"
