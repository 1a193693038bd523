"""A new user's first plan: 7,000 revisions in 400 families, the built-in policy, default rates. Prints figures.

Checks what docs/design.md §8 asks of the read economy: describes <= revisions acted on + about 2·log2(n) per family.
Takes about eight minutes: the default read share (10/s) paces it, as it would against AWS.

    python bench/first_plan.py
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from harness import Account

NOW = datetime.now(UTC)


def account(sim: Any, families: int = 400, total: int = 7000, seed: int = 7) -> None:
    """Family sizes from a Pareto draw, up to two years of history, the older 60% deregistered, 2% tagged."""
    rng = random.Random(seed)
    weights = [rng.paretovariate(1.2) for _ in range(families)]
    sizes = [max(1, int(total * w / sum(weights))) for w in weights]
    sizes[0] += total - sum(sizes)
    for f, size in enumerate(sizes):
        start = NOW - timedelta(days=rng.uniform(30, 730))
        step = (NOW - start) / size
        for n in range(size):
            at = start + step * n
            gone = n < size * 0.6 and size > 3
            sim.seed(
                f"app-{f:03d}",
                registered_at=at,
                status="INACTIVE" if gone else "ACTIVE",
                deregistered_at=at + step * rng.uniform(0.5, 3) if gone else None,
                tags={"tdgc:keep": "true"} if rng.random() < 0.02 else None,
            )


def main() -> None:
    with Account("first_plan:account") as served:
        ran = subprocess.run(
            [sys.executable, "-m", "tdgc", "plan", "--output", "jsonl"],
            env=served.env(),
            capture_output=True,
            text=True,
            check=True,
        )
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    sizes = Counter(line["family"] for line in lines if line["type"] == "decision")
    acted = sum(line["action"] != "keep" for line in lines if line["type"] == "decision")
    bound = acted + sum(2 * math.log2(n + 1) for n in sizes.values())
    describes = served.calls.get("DescribeTaskDefinition", 0)
    print(f"families {len(sizes)}, revisions {sum(sizes.values()):,}, acted on {acted:,}")
    verdict = "within" if describes <= bound else "OVER"
    print(
        f"list calls {served.calls.get('ListTaskDefinitions', 0):,}, describes {describes:,}, "
        f"bound (acted on + 2·log2(n+1) per family) {bound:,.0f}: {verdict}"
    )
    print("summary", json.dumps(lines[-1]["summary"]))


if __name__ == "__main__":
    main()
