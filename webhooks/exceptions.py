from __future__ import annotations

from kit.errors import InvalidInput, NotFound


class EndpointNotFound(NotFound):
    code = "webhook_not_found"


class UrlNotAllowed(InvalidInput):
    code = "webhook_url_not_allowed"


class OrganisationRequired(InvalidInput):
    code = "organisation_required"
