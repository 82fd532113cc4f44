from __future__ import annotations

from kit.errors import Conflict, NotFound, TooManyRequests


class QuoteNotFound(NotFound):
    code = "quote_not_found"


class QuoteExpired(Conflict):
    code = "quote_expired"


class QuoteBudgetExhausted(TooManyRequests):
    code = "quote_budget_exhausted"
