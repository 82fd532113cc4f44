from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kit.text import is_id
from sales.quotes.models import Quote, QuoteBudgetUse


class QuoteRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, quote: Quote) -> Quote:
        self.session.add(quote)
        self.session.flush()
        return quote

    def get(self, quote_id: str, organisation_id: int | None) -> Quote | None:
        """A quote by id; restricted to one organisation unless `organisation_id` is None."""
        if not is_id(quote_id):
            return None
        q = select(Quote).where(Quote.id == quote_id)
        if organisation_id is not None:
            q = q.where(Quote.organisation_id == organisation_id)
        return self.session.scalar(q)


class QuoteBudgetRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def take(self, organisation_id: int, day: date, budget: int) -> int | None:
        """One quote of the day's budget: the number used after it, or None when the budget is
        spent. One statement (insert, or increment while under the budget), atomic on SQLite
        and PostgreSQL alike: the check and the increment cannot be separated."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        row = QuoteBudgetUse
        stmt = (
            insert(row)
            .values(organisation_id=organisation_id, day=day, used=1)
            .on_conflict_do_update(
                index_elements=[row.organisation_id, row.day],
                set_={"used": row.used + 1},
                where=row.used < budget,
            )
            .returning(row.used)
        )
        used = self.session.execute(stmt).scalar_one_or_none()
        return None if used is None else int(used)

    def give_back(self, organisation_id: int, day: date) -> None:
        """A quote taken from the budget that was never shown (the count failed)."""
        self.session.execute(
            update(QuoteBudgetUse)
            .where(
                QuoteBudgetUse.organisation_id == organisation_id,
                QuoteBudgetUse.day == day,
                QuoteBudgetUse.used > 0,
            )
            .values(used=QuoteBudgetUse.used - 1)
        )
