"""The error base every domain error derives from; one handler renders them all."""

from __future__ import annotations

from typing import Any


class RentalError(Exception):
    """A failure the caller can act on. `status` is the HTTP status the API answers with."""

    status: int = 400
    code: str = "error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class NotFound(RentalError):
    status = 404
    code = "not_found"


class Conflict(RentalError):
    status = 409
    code = "conflict"


class InvalidInput(RentalError):
    status = 422
    code = "invalid_input"


class Unauthorized(RentalError):
    status = 401
    code = "unauthorized"


class Forbidden(RentalError):
    status = 403
    code = "forbidden"


class TooManyRequests(RentalError):
    status = 429
    code = "too_many_requests"


class ConfigurationError(RentalError):
    """The instance is not set up (no base snapshot, bad settings): the operator must act."""

    status = 503
    code = "not_configured"


class ServiceBusy(RentalError):
    """The service is saturated: the request was not started, the caller retries after
    `retry_after_seconds` (sent as Retry-After)."""

    status = 503
    code = "busy"
