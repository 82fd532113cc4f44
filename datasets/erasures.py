"""Erasures waiting for the next base refresh (GDPR art. 17): the people who asked that their
record go. The refresh drops them from the snapshot it writes and marks them done; their
opt-out stays on the suppression list (segmentation), so a later import cannot bring them back.

Keyed by the number's HMAC, as opt-outs are: nothing here can be read back into a number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from kit.db import Base, UTCDateTime


class Erasure(Base):
    __tablename__ = "base_erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone_hmac: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The snapshot version written without the record; None while it waits for a refresh.
    erased_in: Mapped[str | None] = mapped_column(String(16), nullable=True)


class ErasureRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def request(self, phone_hmac: bytes, at: datetime) -> bool:
        """Queue an erasure; False when one was already asked (the first one stands)."""
        found = self.session.scalar(select(Erasure.id).where(Erasure.phone_hmac == phone_hmac))
        if found is not None:
            return False
        self.session.add(Erasure(phone_hmac=phone_hmac, requested_at=at))
        self.session.flush()
        return True

    def pending(self) -> set[bytes]:
        """The HMACs still to erase at the next refresh."""
        q = select(Erasure.phone_hmac).where(Erasure.erased_in.is_(None))
        return {bytes(h) for h in self.session.scalars(q)}

    def done(self, phone_hmacs: set[bytes], version: str) -> None:
        if phone_hmacs:
            self.session.execute(
                update(Erasure)
                .where(Erasure.phone_hmac.in_(list(phone_hmacs)), Erasure.erased_in.is_(None))
                .values(erased_in=version)
            )

    def state(self, phone_hmac: bytes) -> Erasure | None:
        return self.session.scalar(select(Erasure).where(Erasure.phone_hmac == phone_hmac))
