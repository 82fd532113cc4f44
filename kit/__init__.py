"""Infrastructure shared by every layer: settings, database, clock, money, errors, secrets.

Kept deliberately small; nothing in here knows about prospects, quotes or orders.
"""
