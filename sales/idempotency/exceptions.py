from __future__ import annotations

from kit.errors import Conflict, InvalidInput


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(InvalidInput):
    """The key was used before for another request: a retry must repeat the first exactly."""

    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(Conflict):
    """The first request with this key has not answered yet, even after a wait."""

    code = "idempotency_key_in_progress"


class IdempotencyKeyTakenOver(Conflict):
    """This request ran so long that a retry took its key over: its work is rolled back."""

    code = "idempotency_key_taken_over"
