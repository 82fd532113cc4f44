from __future__ import annotations

from kit.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"


class KeyNotFound(NotFound):
    code = "api_key_not_found"


class OrganisationNotFound(NotFound):
    code = "organisation_not_found"


class OrganisationExists(Conflict):
    code = "organisation_exists"


class RoleRequired(Forbidden):
    code = "role_required"


class EmailTaken(Conflict):
    code = "email_taken"


class UserNotFound(NotFound):
    code = "user_not_found"


class CannotDisableSelf(Conflict):
    """Staff would lock themselves out: another account manager disables them."""

    code = "cannot_disable_self"


class WeakPassword(InvalidInput):
    code = "weak_password"


class SignInFailed(Unauthorized):
    """Wrong e-mail or password: never says which, so that it reveals no account."""

    code = "sign_in_failed"


class SignInThrottled(TooManyRequests):
    code = "sign_in_throttled"
