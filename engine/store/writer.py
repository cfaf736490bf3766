"""The single writer: one Trio task that commits every store write, in order, off the Trio thread.

Two ways in, one queue (a bounded trio memory channel), so everything commits in the order it was handed over:
- :meth:`StoreWriter.journal`: fire-and-forget for the event path. Never blocks; if the queue is full the record
  is dropped, counted and logged (the journal must never stall event processing; the Gateway's REST history is the
  backstop for what a full queue loses).
- :meth:`StoreWriter.commit`: awaited by callers whose next action depends on the record (an order intent must be
  durable before its request is sent). It returns only after the transaction holding the record committed, with
  ``synchronous=FULL`` on SQLite, and raises if that record could not be written.

The task takes whatever is queued (up to ``batch_max`` jobs) and commits it in one transaction in a worker thread
(see :mod:`engine.store.blocking`).
If a batch fails, each job is retried in its own transaction, so one bad record fails only its own caller. When
the task is cancelled it closes the queue, still commits what was queued (shielded, bounded by
``flush_timeout``), and later writes raise :class:`~engine.store.errors.StoreClosedError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio
from sqlalchemy.exc import IntegrityError

from engine.store.blocking import BlockingRunner
from engine.store.errors import DuplicateIntentError, StoreClosedError, StoreError
from engine.store.records import OrderIntent, Record

log = logging.getLogger("engine.store")

#: Blocking function that commits records in one transaction: ``(records, durable) -> None``.
CommitFn = Callable[[Sequence[Record], bool], None]


@dataclass(slots=True)
class _Job:
    records: tuple[Record, ...]
    durable: bool
    done: trio.Event | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class WriterStats:
    """Counters for health reporting: jobs committed / failed, journal records dropped on a full queue, batches."""

    committed: int = 0
    failed: int = 0
    dropped: int = 0
    batches: int = 0
    _last_drop_log: int = field(default=0, repr=False)


class StoreWriter:
    def __init__(
        self,
        commit_fn: CommitFn,
        run_blocking: BlockingRunner,
        *,
        queue_size: int = 10_000,
        batch_max: int = 500,
        flush_timeout: float = 10.0,
    ) -> None:
        if queue_size < 1 or batch_max < 1:
            raise ValueError("store writer queue_size and batch_max must be >= 1")
        self._commit_fn = commit_fn
        self._run_blocking = run_blocking
        self._send, self._receive = trio.open_memory_channel[_Job](queue_size)
        self._batch_max = batch_max
        self._flush_timeout = flush_timeout
        self._started = False
        self.stats = WriterStats()

    # ----------------------------------------------------------------------------------------------- ways in
    def journal(self, *records: Record) -> bool:
        """Queue ``records`` to commit together, without waiting. Returns False if they were dropped."""
        try:
            self._send.send_nowait(_Job(records, durable=False))
        except trio.WouldBlock:
            self.stats.dropped += len(records)
            if self.stats.dropped >= 2 * self.stats._last_drop_log:  # log at 1, 2, 4, 8, ... drops
                self.stats._last_drop_log = max(1, self.stats.dropped)
                log.warning("store queue full: %d journal record(s) dropped so far", self.stats.dropped)
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.stats.dropped += len(records)
            log.warning("store writer is shut down: journal record %s dropped", type(records[0]).__name__)
            return False
        return True

    async def commit(self, *records: Record, durable: bool = True) -> None:
        """Queue ``records`` and return once they are committed (in one transaction); raise if they fail.

        ``durable`` asks for ``synchronous=FULL`` on SQLite for that transaction (survives power loss).
        """
        job = _Job(records, durable=durable, done=trio.Event())
        try:
            await self._send.send(job)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise StoreClosedError("the store writer is shut down: the record was not written") from None
        assert job.done is not None
        await job.done.wait()
        if job.error is not None:
            raise job.error

    # --------------------------------------------------------------------------------------------- the task
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task. Start exactly once: ``await nursery.start(writer.run)``."""
        if self._started:
            raise RuntimeError("the store writer runs once per store")
        self._started = True
        task_status.started()
        try:
            while True:
                batch = [await self._receive.receive()]
                batch.extend(self._drain(self._batch_max - 1))
                # Jobs taken off the queue are committed whatever happens: no checkpoint between the receive and
                # this shield, and a cancellation waits for the batch (it lands at the next receive).
                with trio.CancelScope(shield=True):
                    await self._commit_batch(batch)
        finally:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + self._flush_timeout
                # Closing the send side lets nothing new in (waiting senders get StoreClosedError) while what is
                # buffered stays readable; closing the receive side first would discard the buffer.
                self._send.close()
                while pending := self._drain(self._batch_max):
                    await self._commit_batch(pending)
            for job in self._drain(None):  # only left when the flush timed out
                self._finish(job, StoreClosedError("the store writer shut down before this record was written"))
            self._receive.close()

    def _drain(self, limit: int | None) -> list[_Job]:
        jobs: list[_Job] = []
        while limit is None or len(jobs) < limit:
            try:
                jobs.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        return jobs

    async def _commit_batch(self, batch: list[_Job]) -> None:
        self.stats.batches += 1
        records = [record for job in batch for record in job.records]
        durable = any(job.durable for job in batch)
        try:
            await self._run_blocking(self._commit_fn, records, durable)
        except Exception as exc:
            if len(batch) == 1:
                self._finish(batch[0], exc)
                return
            log.warning("store batch of %d jobs failed (%s); retrying each on its own", len(batch), type(exc).__name__)
            for job in batch:
                try:
                    await self._run_blocking(self._commit_fn, job.records, job.durable)
                except Exception as job_exc:
                    self._finish(job, job_exc)
                else:
                    self._finish(job, None)
            return
        for job in batch:
            self._finish(job, None)

    def _finish(self, job: _Job, exc: BaseException | None) -> None:
        if exc is None:
            self.stats.committed += 1
        else:
            self.stats.failed += 1
            exc = _explain(job, exc)
            if job.done is None:
                kinds = ", ".join(type(r).__name__ for r in job.records)
                log.error("store: journal record(s) %s could not be written: %s", kinds, exc)
        job.error = exc
        if job.done is not None:
            job.done.set()


def _explain(job: _Job, exc: BaseException) -> BaseException:
    """Turn a driver error into the store's own, naming the record (and never quoting SQL parameters at length)."""
    if isinstance(exc, StoreError | ValueError | TypeError):
        return exc
    if isinstance(exc, IntegrityError):
        intents = [r for r in job.records if isinstance(r, OrderIntent)]
        if intents:
            i = intents[0]
            err: StoreError = DuplicateIntentError(
                f"order intent {i.intent_id!r} (customTag {i.custom_tag!r}, account {i.account_id}) "
                "reuses an intent id or a customTag already recorded for this account"
            )
        else:
            err = StoreError(f"integrity error writing {type(job.records[0]).__name__}: {exc.orig}")
        err.__cause__ = exc
        return err
    err = StoreError(f"database write failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    err.__cause__ = exc
    return err
