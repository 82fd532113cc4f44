from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from kit.text import is_id
from sales.accounts.models import Role, User
from sales.quotes.models import Quote, QuoteBudgetUse, QuoteFlag


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

    def recent(self, organisation_id: int | None, limit: int, offset: int) -> list[Quote]:
        """Newest first; one organisation's unless `organisation_id` is None."""
        q = select(Quote)
        if organisation_id is not None:
            q = q.where(Quote.organisation_id == organisation_id)
        q = q.order_by(Quote.created_at.desc(), Quote.id).limit(limit).offset(offset)
        return list(self.session.scalars(q))


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

    def used(self, organisation_id: int, day: date) -> int:
        """Quotes of the day's budget used so far."""
        used = self.session.scalar(
            select(QuoteBudgetUse.used).where(
                QuoteBudgetUse.organisation_id == organisation_id, QuoteBudgetUse.day == day
            )
        )
        return int(used or 0)


@dataclass(frozen=True)
class FlagSummary:
    organisation_id: int
    flags: int
    with_other_organisations: int
    last_at: datetime


class QuoteAuditRepository:
    """The audit's reads and writes: quotes to audit, their neighbours in size, the flags."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def pending(self, since: datetime, limit: int) -> list[str]:
        """Quotes of `since` or later not audited yet, oldest first."""
        q = (
            select(Quote.id)
            .where(Quote.audited_at.is_(None), Quote.created_at >= since)
            .order_by(Quote.created_at, Quote.id)
            .limit(limit)
        )
        return list(self.session.scalars(q))

    def with_role(self, quote_id: str) -> tuple[Quote, Role] | None:
        """A quote and the role of the user who asked for it."""
        row = self.session.execute(
            select(Quote, User.role)
            .join(User, User.id == Quote.user_id)
            .where(Quote.id == quote_id)
        ).first()
        return None if row is None else (row[0], row[1])

    def neighbours(self, quote: Quote, since: datetime, k: int, limit: int) -> list[Quote]:
        """Up to `limit` quotes answered to clients before `quote` (and from `since` on), any
        organisation, any snapshot, whose exact count lies within k of its own; nearest in
        size first."""
        earlier = or_(
            Quote.created_at < quote.created_at,
            and_(Quote.created_at == quote.created_at, Quote.id < quote.id),
        )
        q = (
            select(Quote)
            .join(User, User.id == Quote.user_id)
            .where(
                Quote.exact_count > quote.exact_count - k,
                Quote.exact_count < quote.exact_count + k,
                Quote.created_at >= since,
                earlier,
                Quote.shown_count.is_not(None),
                User.role == Role.client,
            )
            .order_by(func.abs(Quote.exact_count - quote.exact_count), Quote.created_at.desc())
            .limit(limit)
        )
        return list(self.session.scalars(q))

    def mark_audited(self, quote_id: str, now: datetime) -> bool:
        """Compare-and-set: True for the one run that marks the quote audited."""
        done = self.session.execute(
            update(Quote)
            .where(Quote.id == quote_id, Quote.audited_at.is_(None))
            .values(audited_at=now)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    def add_flags(self, flags: list[QuoteFlag]) -> None:
        self.session.add_all(flags)
        self.session.flush()

    @staticmethod
    def _flagged(organisation_id: int | None, since: datetime | None) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if organisation_id is not None:
            where.append(QuoteFlag.organisation_id == organisation_id)
        if since is not None:
            where.append(Quote.created_at >= since)
        return where

    def flagged_quotes(
        self, organisation_id: int | None, since: datetime | None, limit: int, offset: int
    ) -> list[Quote]:
        """Quotes flagged at least once (as the later of a pair), newest first."""
        ids = (
            select(QuoteFlag.quote_id)
            .join(Quote, Quote.id == QuoteFlag.quote_id)
            .where(*self._flagged(organisation_id, since))
            .distinct()
        )
        q = (
            select(Quote)
            .where(Quote.id.in_(ids))
            .order_by(Quote.created_at.desc(), Quote.id)
            .limit(limit)
            .offset(offset)
        )
        return list(self.session.scalars(q))

    def flags_of(self, quote_ids: list[str]) -> list[tuple[QuoteFlag, Quote]]:
        """The flags of these quotes, each with its earlier quote, nearest first."""
        earlier = aliased(Quote)
        rows = self.session.execute(
            select(QuoteFlag, earlier)
            .join(earlier, earlier.id == QuoteFlag.earlier_quote_id)
            .where(QuoteFlag.quote_id.in_(quote_ids))
            .order_by(QuoteFlag.difference, earlier.created_at.desc())
        ).all()
        return [(flag, quote) for flag, quote in rows]

    def summary(self, organisation_id: int | None, since: datetime) -> list[FlagSummary]:
        """Per organisation: its flags for quotes of `since` or later, how many pair it with
        another organisation's quote, the latest such quote."""
        other = case((QuoteFlag.earlier_organisation_id != QuoteFlag.organisation_id, 1), else_=0)
        q = (
            select(
                QuoteFlag.organisation_id,
                func.count(),
                func.coalesce(func.sum(other), 0),
                func.max(Quote.created_at),
            )
            .join(Quote, Quote.id == QuoteFlag.quote_id)
            .where(*self._flagged(organisation_id, since))
            .group_by(QuoteFlag.organisation_id)
            .order_by(func.count().desc(), QuoteFlag.organisation_id)
        )
        return [
            FlagSummary(int(org), int(n), int(others), last)
            for org, n, others, last in self.session.execute(q)
        ]
