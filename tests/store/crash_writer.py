"""Subprocess for the kill -9 test: writes a stream of order intents and transitions until it is killed.

Every intent ``n`` follows a path fixed by ``n`` (see :func:`path_of`), and every row's content is a function of
``n`` (:func:`intent_of`), so the test can check each surviving row completely. Prints ``ready`` once the first
intent is committed.
"""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime, timedelta

import trio
import trio.lowlevel

from engine.store import Fill, OrderIntent, OrderTransition, OrderUpdate, open_store

BASE = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)


def path_of(n: int) -> list[str]:
    return [
        ["submitted", "working", "filled"],
        ["submitted", "ambiguous", "verifying"],
        ["submitted", "rejected"],
        ["submitted"],
    ][n % 4]


def at_of(n: int, step: int) -> datetime:
    return BASE + timedelta(milliseconds=10 * n + step)


def intent_of(n: int) -> OrderIntent:
    return OrderIntent(
        intent_id=f"crash-{n}",
        account_id=1000 + n % 3,
        contract_id=f"CON.F.US.MNQ.M{25 + n % 2}",
        side=n % 2,
        size=1 + n % 5,
        order_type=1 + n % 2,
        custom_tag=f"engine-{n:08d}",
        created_at=at_of(n, 0),
        limit_price=21000.0 + n / 4,
    )


async def main(url: str) -> None:
    async with open_store(url) as store:
        n = 0
        while True:
            steps = path_of(n)
            await store.record_intent(
                intent_of(n), OrderTransition(f"crash-{n}", "new", steps[0], "place", at_of(n, 0))
            )
            if n == 0:
                print("ready", flush=True)
            for step, (before, after) in enumerate(itertools.pairwise(steps), start=1):
                records = (
                    OrderUpdate(f"crash-{n}", at_of(n, step), status=after, gateway_order_id=90000 + n),
                    OrderTransition(f"crash-{n}", before, after, "test", at_of(n, step)),
                )
                if (n + step) % 3:
                    store.journal(*records)  # fire-and-forget, batched by the writer
                else:
                    await store.commit_now(*records)
                if after == "filled":
                    store.journal(Fill(n, 1000 + n % 3, 90000 + n, "C", 0, 1.0, 1, 0.5, at_of(n, step)))
            await trio.lowlevel.checkpoint()
            n += 1


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
