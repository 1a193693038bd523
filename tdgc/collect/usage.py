"""Last uses, as the register-or-reuse store counts them: what `unused_for` decides by."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from tdgc.reuse.store import Store


def last_uses(store: Store) -> dict[str, datetime]:
    """ARN -> last use, for every revision the store knows a use of (what `unused_for` decides by)."""
    return {r.arn: r.last_used for r in store.records() if r.last_used is not None}


class LastUses(Mapping[str, datetime]):
    """ARN -> last use as the store told it at the start of a run (what `unused_for` decides by), and a fresh
    look at one revision's entry just before it is deregistered: `tdgc register` may hand it out meanwhile."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._records = {r.arn: r for r in store.records() if r.last_used is not None}

    def __getitem__(self, arn: str) -> datetime:
        last = self._records[arn].last_used
        assert last is not None  # only records with a last use are kept
        return last

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def now(self, arn: str) -> datetime | None:
        """The revision's last use as the store has it now (one read); None once its content has moved on to
        another revision, or the store has forgotten it."""
        known = self._records.get(arn)
        fresh = self._store.lookup(known.hash, known.family) if known is not None else None
        return fresh.last_used if fresh is not None and fresh.arn == arn else None
