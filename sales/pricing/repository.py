from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sales.pricing.models import ContractGrid


class ContractGridRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, organisation_id: int) -> ContractGrid | None:
        return self.session.scalar(
            select(ContractGrid).where(ContractGrid.organisation_id == organisation_id)
        )

    def put(self, row: ContractGrid) -> ContractGrid:
        merged = self.session.merge(row)
        self.session.flush()
        return merged

    def delete(self, organisation_id: int) -> bool:
        row = self.get(organisation_id)
        if row is None:
            return False
        self.session.delete(row)
        self.session.flush()
        return True
