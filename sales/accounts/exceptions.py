from __future__ import annotations

from kit.errors import Conflict, Forbidden, NotFound, Unauthorized


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
