"""Errors of the rights requests. None of them ever repeats a number or says whether a number
is in the base."""

from __future__ import annotations

from kit.errors import InvalidInput, NotFound, TooManyRequests, Unauthorized


class NotAMobileNumber(InvalidInput):
    code = "not_a_mobile_number"


class TooManyCodes(TooManyRequests):
    code = "too_many_codes"


class WrongCode(InvalidInput):
    code = "wrong_code"


class AccessRequired(Unauthorized):
    code = "access_required"


class RequestNotFound(NotFound):
    code = "request_not_found"


class RequestClosed(InvalidInput):
    code = "request_closed"
