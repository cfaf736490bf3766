"""The risk driver: evaluates accounts (pure :func:`engine.risk.evaluator.evaluate`) and carries out the decisions.

Why a thin driver: every judgement lives in the pure evaluator; this module only does what needs I/O and time:
it keeps each account's :class:`RiskState` between evaluations, sends the enforcement commands through the order
manager's priority lane (cancels first, all at once; then closes, all at once), writes the enforcement log and the
unrealized P&L snapshots, and re-evaluates on every mirror change and on a timer (session and reset boundaries pass
without any event). An action sent recently is not re-sent while the mirror has not caught up yet (``resend_after_s``,
Trio clock); if the order or position is still there after that, the next evaluation asks again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import trio

from engine.orders.intents import IntentResult, ResultKind
from engine.protocol.timebase import WallClock
from engine.risk.decisions import (
    Breach,
    CancelOrder,
    ClosePosition,
    DataMissing,
    EnforcementAction,
    Evaluation,
    LockedOut,
    RiskState,
)
from engine.risk.evaluator import evaluate
from engine.risk.inputs import AccountSnapshot, MirrorView
from engine.risk.pnl import ContractSpec
from engine.risk.rules import RiskRules
from engine.store.records import Record

log = logging.getLogger(__name__)

DONE_KINDS = frozenset({ResultKind.ACCEPTED, ResultKind.REJECTED, ResultKind.ABSENT})
"""Results after which the action needs no resend now (a rejected cancel: the order was already final; the next
evaluation sees from the mirror whether anything is really left)."""


class EnforcementPort(Protocol):
    """What the driver needs from the command path (:class:`engine.orders.manager.OrderManager` provides it)."""

    async def cancel(self, account_id: int, order_id: int, *, priority: bool = False) -> IntentResult: ...

    async def close_position(
        self, account_id: int, contract_id: str, *, size: int | None = None, priority: bool = False
    ) -> IntentResult: ...


class Journal(Protocol):
    """The store's non-blocking journal (:meth:`engine.store.Store.journal`)."""

    def journal(self, *records: Record) -> bool: ...


class MirrorSource(MirrorView, Protocol):
    @property
    def account_ids(self) -> frozenset[int]: ...

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...


class RiskDriver:
    def __init__(
        self,
        rules: RiskRules,
        port: EnforcementPort,
        *,
        clock: WallClock,
        journal: Journal | None = None,
        resend_after_s: float = 5.0,
        on_missing: Callable[[DataMissing], None] | None = None,
    ) -> None:
        self.rules = rules
        self.port = port
        self.clock = clock
        self.journal = journal
        self.resend_after_s = resend_after_s
        self.on_missing = on_missing
        self._states: dict[int, RiskState] = {}
        self._sent: dict[EnforcementAction, float] = {}

    def state(self, account_id: int) -> RiskState:
        return self._states.get(account_id, RiskState())

    def restore(self, account_id: int, state: RiskState) -> None:
        """Start from a remembered state (e.g. a lockout that must survive a restart)."""
        self._states[account_id] = state

    async def check(self, snapshot: AccountSnapshot) -> Evaluation:
        """Evaluate one account and carry out what was decided; returns the evaluation."""
        evaluation = evaluate(snapshot, self.state(snapshot.account_id), self.rules)
        self._states[snapshot.account_id] = evaluation.state
        records: list[Record] = []
        if evaluation.pnl is not None and evaluation.snapshot_due:
            records.append(evaluation.pnl.to_record())
        for decision in evaluation.decisions:
            if isinstance(decision, DataMissing) and self.on_missing is not None:
                self.on_missing(decision)
            elif isinstance(decision, Breach):
                log.warning("risk breach on account %d: %s: %s", decision.account_id, decision.rule, decision.detail)
            elif decision.notable and not isinstance(decision, LockedOut):
                records.append(decision.to_record())
                log.info("risk: account %d: %s", snapshot.account_id, type(decision).__name__)
        actions = self._due(evaluation.actions)
        failed = await self._enforce(actions) if actions else []
        completed_at = self.clock.now()
        outcome = "completed" if not failed else f"incomplete: {len(failed)} of {len(actions)} actions not confirmed"
        for decision in evaluation.decisions:
            if isinstance(decision, Breach) or (isinstance(decision, LockedOut) and decision.notable and actions):
                records.append(decision.to_record(outcome=outcome, completed_at=completed_at))
        if records and self.journal is not None:
            self.journal.journal(*records)
        return evaluation

    def _due(self, actions: Iterable[EnforcementAction]) -> list[EnforcementAction]:
        now = trio.current_time()
        self._sent = {a: t for a, t in self._sent.items() if now - t < self.resend_after_s}
        return [a for a in actions if a not in self._sent]

    async def _enforce(self, actions: list[EnforcementAction]) -> list[EnforcementAction]:
        failed: list[EnforcementAction] = []
        for batch in (
            [a for a in actions if isinstance(a, CancelOrder)],
            [a for a in actions if isinstance(a, ClosePosition)],
        ):
            async with trio.open_nursery() as nursery:
                for action in batch:
                    nursery.start_soon(self._one, action, failed)
        return failed

    async def _one(self, action: EnforcementAction, failed: list[EnforcementAction]) -> None:
        self._sent[action] = trio.current_time()
        try:
            if isinstance(action, CancelOrder):
                result = await self.port.cancel(action.account_id, action.order_id, priority=True)
            else:
                result = await self.port.close_position(action.account_id, action.contract_id, priority=True)
        except Exception as exc:  # one failed command must not stop the others
            log.error("risk enforcement %s failed: %s", action.describe(), type(exc).__name__)
            failed.append(action)
            return
        if result.kind not in DONE_KINDS:
            log.warning("risk enforcement %s: %s (%s)", action.describe(), result.kind, result.reason or result.message)
            failed.append(action)

    async def run(
        self,
        mirror: MirrorSource,
        contracts: Mapping[str, ContractSpec],
        *,
        interval_s: float = 1.0,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Re-evaluate every account of ``mirror`` after each change and at least every ``interval_s`` seconds.

        ``contracts`` is a live mapping (the contract cache); it is read at each evaluation."""
        wake = trio.Event()

        def on_change(_: Any) -> None:
            wake.set()

        unsubscribe = mirror.subscribe(on_change)
        try:
            task_status.started()
            while True:
                with trio.move_on_after(interval_s):
                    await wake.wait()
                wake = trio.Event()
                now = self.clock.now()
                held = {p.account_id for p in mirror.positions()} | {o.account_id for o in mirror.working_orders()}
                # Accounts already known keep being evaluated when they go flat: a lockout must still end on time.
                for account_id in sorted(mirror.account_ids | held | set(self._states)):
                    await self.check(AccountSnapshot.from_mirror(mirror, account_id, now=now, contracts=contracts))
        finally:
            unsubscribe()
