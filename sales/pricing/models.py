from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, JSONOf, UTCDateTime
from sales.pricing.schemas import PriceGrid


class ContractGrid(Base):
    """An organisation's contract price grid, set by an account manager (replaces the default
    grid for its new quotes and orders; existing orders keep the grid they were priced with)."""

    __tablename__ = "contract_grids"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    grid: Mapped[PriceGrid] = mapped_column(JSONOf(PriceGrid))
    set_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)
