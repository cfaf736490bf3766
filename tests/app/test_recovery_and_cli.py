"""Start-up recovery (an intent left unresolved by a crash is verified before the engine is ready, and adopted, not
placed again) and the ``run`` command's refusals (bad configuration, missing credentials) with their exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from engine.__main__ import main
from engine.app import duplicate_orders
from engine.gateway.testing import SIM_EPOCH
from engine.protocol.enums import OrderSide, OrderType
from engine.store import OrderIntent, open_store
from tests.app.harness import ACCOUNT, ES, place, quiet_config, running_engine


async def test_unresolved_intents_are_recovered_before_ready(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    tag = "crashed-mid-send"
    async with open_store(f"sqlite:///{db}", threads=False) as store:
        await store.record_intent(OrderIntent(
            intent_id="intent-1", account_id=ACCOUNT, contract_id=ES, side=int(OrderSide.BID), size=1,
            order_type=int(OrderType.LIMIT), custom_tag=tag, created_at=SIM_EPOCH, limit_price=6000.0))
        assert [i.custom_tag for i in await store.unresolved_intents()] == [tag]

    landed: list[int] = []

    async def before(sim: object) -> None:
        # the request of the crashed run did reach the Gateway: the order exists under the intent's tag
        landed.append(await place(sim, tag))  # type: ignore[arg-type]

    async with running_engine(tmp_path, quiet_config(), before=before) as run:
        lines = run.lines
        recovered = next(i for i, line in enumerate(lines) if line.startswith("order recovery done"))
        assert recovered < next(i for i, line in enumerate(lines) if line.startswith("connecting the user hub"))
        assert run.engine.store is not None
        assert await run.engine.store.unresolved_intents() == []
        stored = await run.engine.store.get_intent("intent-1")
        assert stored is not None and stored.gateway_order_id == landed[0]
        assert duplicate_orders(run.sim.gateway.snapshot()["orders"]) == 0


def test_run_refuses_a_bad_configuration_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("signalr:\n  reconnection:\n    maxAttempts: -1\n")
    assert main(["run", "--config", str(bad)]) == 2
    assert "maxAttempts" in capsys.readouterr().err


def test_run_without_credentials_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TOPSTEPX_USERNAME", raising=False)
    monkeypatch.delenv("TOPSTEPX_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "TOPSTEPX_USERNAME" in capsys.readouterr().err


def test_chaos_needs_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--chaos"]) == 2
    assert "--simulate" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for code in ("0  clean stop", "2  bad configuration", "3  permanent login failure", "4  a hub gave up"):
        assert code in text
