"""Errors of exclusion files. None of them ever quotes a line of the file."""

from __future__ import annotations

from kit.errors import Conflict, InvalidInput, RentalError
from segmentation.exceptions import ExclusionFileNotFound, ExclusionFileNotReady

__all__ = [
    "ExclusionFileDeleted",
    "ExclusionFileInUse",
    "ExclusionFileMediaType",
    "ExclusionFileNotFound",
    "ExclusionFileNotReady",
    "ExclusionFileTooLarge",
    "ExclusionFileTooSmall",
    "ExclusionFileUnreadable",
]


class ExclusionFileTooSmall(InvalidInput):
    code = "exclusion_file_too_small"


class ExclusionFileTooLarge(RentalError):
    status = 413
    code = "exclusion_file_too_large"


class ExclusionFileUnreadable(InvalidInput):
    code = "exclusion_file_unreadable"


class ExclusionFileMediaType(RentalError):
    status = 415
    code = "unsupported_media_type"


class ExclusionFileInUse(Conflict):
    code = "exclusion_file_in_use"


class ExclusionFileDeleted(Conflict):
    """A quote names a file deleted since: an order from it could not leave its people out."""

    code = "exclusion_file_deleted"
