"""A simulated account with every case the core must get right, and what the test policy should decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tdgc.local.simulator import Simulator
from tests.helpers import NOW, days

POLICY = """\
[defaults]
keep_last = 5
deregister_after = "30 days"
delete_after = "180 days"
protect_tags = { "tdgc:keep" = "true" }

[[rules]]
families = ["dbt-*"]
keep_last = 1
delete_after = "7 days"

[[rules]]
families = ["prod-*"]
exclude = true
"""
FILLER_FAMILIES = 120  # more than one page of families


@dataclass
class Expected:
    actions: dict[str, str] = field(default_factory=dict)  # arn -> keep / deregister / delete
    protected: set[str] = field(default_factory=set)
    families: int = 0

    def add(self, arn: str, action: str, protected: bool = False) -> None:
        self.actions[arn] = action
        if protected:
            self.protected.add(arn)

    def of(self, action: str) -> set[str]:
        return {arn for arn, a in self.actions.items() if a == action}


def seed_account(sim: Simulator, now: datetime = NOW, *, big: int = 260, fillers: int = FILLER_FAMILIES) -> Expected:
    """Seed the account as it stands at `now` (run the plan at the same moment: ages are relative to it).
    `big` ACTIVE revisions in the family big, and `fillers` small families: fewer for a paced subprocess."""
    e = Expected()
    seed = sim.seed
    # big: 40 INACTIVE deregistered 200 days ago, then 260 ACTIVE all registered > 30 days ago.
    for n in range(40):
        e.add(
            seed("big", registered_at=now - days(700 - n), status="INACTIVE", deregistered_at=now - days(200)), "delete"
        )
    for n in range(big):
        arn = seed("big", registered_at=now - days(400 - n))
        e.add(arn, "keep" if n >= big - 5 else "deregister")
    # web: 3 old ACTIVE, then 10 ACTIVE younger than 30 days: only the old ones go.
    for age in (100, 90, 80):
        e.add(seed("web", registered_at=now - days(age)), "deregister")
    for n in range(10):
        e.add(seed("web", registered_at=now - days(20 - n)), "keep")
    # dbt-run: the create-run-deregister pattern; INACTIVE older than 7 days go, recent ones stay.
    for n in range(30):
        at = now - days(40 - n)
        e.add(seed("dbt-run", registered_at=at, status="INACTIVE", deregistered_at=at + days(0.05)), "delete")
    e.add(seed("dbt-run", registered_at=now - days(5)), "keep")
    for _ in range(2):
        e.add(seed("dbt-run", registered_at=now - days(3), status="INACTIVE", deregistered_at=now - days(2)), "keep")
    # prod-web: excluded, however old.
    for _ in range(5):
        e.add(
            seed("prod-web", registered_at=now - days(900), status="INACTIVE", deregistered_at=now - days(800)), "keep"
        )
    for n in range(20):
        e.add(seed("prod-web", registered_at=now - days(500 - n)), "keep")
    # tagged: one old INACTIVE revision carries the protecting tag.
    for n in range(3):
        tags = {"tdgc:keep": "true"} if n == 1 else {"team": "a"}
        arn = seed(
            "tagged", registered_at=now - days(400), status="INACTIVE", deregistered_at=now - days(300), tags=tags
        )
        e.add(arn, "keep" if n == 1 else "delete", protected=n == 1)
    e.add(seed("tagged", registered_at=now - days(300)), "keep")
    # legacy: no timestamps at all; nothing can be aged, so only keep-last decides.
    for _ in range(4):
        e.add(seed("legacy", registered_at=None, status="INACTIVE"), "keep")
    for _ in range(7):
        e.add(seed("legacy", registered_at=None), "keep")
    for n in range(fillers):
        for _ in range(2):
            e.add(seed(f"svc-{n:03d}", registered_at=now - days(10)), "keep")
    e.families = 6 + fillers
    return e
