from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kit.text import is_id
from rental.quotes.models import Quote


class QuoteRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, quote: Quote) -> Quote:
        self.session.add(quote)
        self.session.flush()
        return quote

    def get(self, quote_id: str, organisation_id: int | None) -> Quote | None:
        if not is_id(quote_id):
            return None
        """A quote by id; restricted to one organisation unless `organisation_id` is None."""
        q = select(Quote).where(Quote.id == quote_id)
        if organisation_id is not None:
            q = q.where(Quote.organisation_id == organisation_id)
        return self.session.scalar(q)
