"""Errors of the carrier intake."""

from __future__ import annotations

from kit.errors import NotFound, Unauthorized


class CarrierNotFound(NotFound):
    """A webhook for a carrier this service neither uses nor gave a secret to."""

    code = "carrier_not_found"


class CarrierSecretRequired(Unauthorized):
    code = "carrier_secret_required"
