"""PostgreSQL back-end (in progress)."""

from __future__ import annotations

from optin.storage.base import StorageError

__all__ = ["PostgresStorage"]


class PostgresStorage:
    """Placeholder until the back-end lands."""

    def __init__(self, url: str) -> None:
        raise StorageError("the PostgreSQL back-end is not ready yet")
