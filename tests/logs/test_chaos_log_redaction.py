"""Redaction proven on a whole run's log: the Engine (encrypted token storage) and a scripted trader with its own
API key run against the in-process simulator for ten virtual minutes of the ``chaos-quick`` fault rounds (every
fault kind, token expiries and revocations included, so tokens are renewed over and over) plus a risk breach, with
DEBUG logging of every logger into one file. Then the whole file is searched for the engine's API key, the trader's
API key, the token-encryption key (base64 as configured, and its raw bytes in hex) and every token the simulator
issued: none may appear."""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from engine.gateway.testing import SimHarness
from engine.logs import setup_logging
from engine.protocol.enums import OrderType
from simulator.app import build_app
from simulator.faults import ALL_KINDS, kinds_injected
from simulator.trader import ScriptedTrader
from simulator.transport import SimulatorTransport
from tests.app.harness import engine_settings, place, quiet_config, running_engine

KEY_ENV = "ENGINE_TEST_REDACTION_TOKEN_KEY"
TRADER_KEY = "trader-own-key-5f2a9c"


@pytest.fixture
def package_levels() -> Iterator[None]:
    """A level left on the package loggers by another test (e.g. a benchmark) must not hide lines from this log."""
    loggers = [logging.getLogger(name) for name in ("engine", "simulator")]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    for logger, level in zip(loggers, saved, strict=True):
        logger.setLevel(level)


async def test_a_chaos_run_logs_no_secret(autojump_clock: trio.abc.Clock, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, package_levels: None) -> None:
    raw_key = os.urandom(32)
    encoded_key = base64.b64encode(raw_key).decode()
    monkeypatch.setenv(KEY_ENV, encoded_key)
    config = quiet_config(token_ttl_s=600.0, tick_interval_s=1.0)
    config.api_keys = {"sim": [TRADER_KEY]}
    settings = engine_settings(config, tmp_path / "engine.db",
                               authentication={"storage": {"type": "encrypted", "key_env": KEY_ENV,
                                                           "path": str(tmp_path / "token.enc")},
                                               "token_refresh": {"buffer_seconds": 120}},
                               logging={"level": "DEBUG"},
                               risk_rules={"max_contracts": {"enabled": True, "total": 3}})
    api_key = settings.credentials.api_key.get_secret_value()
    assert settings.authentication.storage.type == "encrypted"
    out = io.StringIO()
    setup_logging(settings, stream=out)

    issued: list[str] = []

    async def before(sim: SimHarness) -> None:
        original = sim.gateway.tokens.issue

        def recording(user: str) -> str:
            token = original(user)
            issued.append(token)
            return token

        sim.gateway.tokens.issue = recording  # type: ignore[method-assign]

    async with running_engine(tmp_path, config, settings=settings, before=before) as run:
        gateway = run.sim.gateway
        trader = ScriptedTrader(SimulatorTransport(build_app(gateway)), username="sim", api_key=TRADER_KEY,
                                accounts=[1001, 1002], seed=5, pace_per_min=30.0, breach_every=6)
        async with trio.open_nursery() as nursery:
            await nursery.start(trader.run)
            nursery.start_soon(gateway.faults.run_profile, "chaos-quick")
            await place(run.sim, "oversized", order_type=OrderType.MARKET, price=None, size=5)  # a breach
            await trio.sleep(600)
            nursery.cancel_scope.cancel()
        gateway.faults.disarm()
        counts = kinds_injected(gateway.faults.log)
        assert all(counts[kind] > 0 for kind in ALL_KINDS), counts
        assert run.engine.enforcer is not None and run.engine.enforcer.breaches >= 1
        assert trader.stats.relogins > 0  # the trader's tokens were refused and renewed too

    text = out.getvalue()
    assert len(text.splitlines()) > 500 and " DEBUG " in text  # a real, verbose log
    assert "new session token" in text and "fault armed: expire_tokens" in text
    assert len(issued) > 10  # logins and renewals of both clients, over and over
    secrets: dict[str, Any] = {"engine API key": api_key, "trader API key": TRADER_KEY,
                               "encryption key": encoded_key, "encryption key (hex)": raw_key.hex()}
    secrets.update({f"token #{n}": token for n, token in enumerate(issued)})
    secrets.update({f"token #{n} signature": token.rsplit(".", 1)[1] for n, token in enumerate(issued)})
    leaked = [name for name, value in secrets.items() if value in text]
    assert leaked == []
