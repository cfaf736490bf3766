"""``python -m engine state`` and ``python -m engine history``: output from a populated store, and clear messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import trio

from engine.__main__ import main
from engine.store import (
    ComponentEvent,
    EnforcementEntry,
    Fill,
    OrderUpdate,
    PnlSnapshot,
    ReconcileFinding,
    StateSnapshot,
    open_store,
)
from tests.store.helpers import T0, intent, transition
from tests.store.test_roundtrip import GATEWAY_STATE


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./config.yaml
    for name in list(os.environ):
        if name.startswith("ENGINE_"):
            monkeypatch.delenv(name)


def populate(url: str) -> None:
    async def fill_store() -> None:
        async with open_store(url) as store:
            await store.save_state(StateSnapshot.from_gateway(GATEWAY_STATE, T0))
            await store.record_intent(intent(1), transition(1, "new", "submitted", cause="place"))
            await store.update_order(OrderUpdate("intent-1", T0 + timedelta(seconds=1), status="working",
                                                 gateway_order_id=90210))
            await store.record_intent(intent(2, at=T0 + timedelta(days=2)))
            store.journal(
                Fill(7001, 1001, 90210, "CON.F.US.MNQ.M25", 0, 21001.5, 1, 0.37, T0 + timedelta(seconds=3)),
                EnforcementEntry("daily_loss", {"realized": -612.5}, -600.0, ["flatten"], "flat", T0),
                ReconcileFinding("missed_fill", {"tradeId": 7001}, T0, account_id=1001),
                ComponentEvent("user_hub", "connected", "reconnecting", "ws closed 1006", T0),
                PnlSnapshot(1001, date(2025, 3, 3), -90.0, T0),
            )

    trio.run(fill_store)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_state_json_has_the_gateway_shape(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    populate(db_url)
    code, out, err = run_cli(capsys, "state", "--json", "--set", f"database.url={db_url}")
    assert (code, err) == (0, "")
    assert json.loads(out) == GATEWAY_STATE


def test_state_table_is_readable(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    populate(sqlite_url)
    code, out, _ = run_cli(capsys, "state", "--set", f"database.url={sqlite_url}")
    assert code == 0
    assert "mirrored state saved at 2025-03-03 14:30:00.000Z" in out
    assert "accounts (2)" in out and "positions (1)" in out and "orders (1)" in out
    headers = [line.split() for line in out.splitlines() if line.startswith("accountId  id")]
    assert headers[0][:4] == ["accountId", "id", "contractId", "type"]  # positions
    assert headers[1][:4] == ["accountId", "id", "contractId", "status"] and "customTag" in headers[1]  # orders
    assert any("50KTC-1" in line and "50210.5" in line for line in out.splitlines())


def test_history_defaults_to_orders_and_filters_by_since(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    populate(sqlite_url)
    code, out, _ = run_cli(capsys, "history", "--json", "--set", f"database.url={sqlite_url}")
    rows = json.loads(out)
    assert code == 0 and [r["intent_id"] for r in rows] == ["intent-1", "intent-2"]
    assert rows[0]["status"] == "working" and rows[0]["updated_at"] == "2025-03-03T14:30:01+00:00"
    code, out, _ = run_cli(capsys, "history", "--since", "2025-03-04", "--set", f"database.url={sqlite_url}")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["intent_id", "account_id", "contract_id"] and set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == ["intent-2"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("fills", "7001"),
        ("enforcement", '{"realized":-612.5}'),
        ("reconcile", "missed_fill"),
        ("connection", "ws closed 1006"),
        ("transitions", "place"),
        ("pnl", "-90.0"),
    ],
)
def test_history_kinds_print_tables(sqlite_url: str, capsys: pytest.CaptureFixture[str], kind: str,
                                    expected: str) -> None:
    populate(sqlite_url)
    code, out, _ = run_cli(capsys, "history", "--kind", kind, "--set", f"database.url={sqlite_url}")
    assert code == 0 and expected in out


def test_empty_history_says_so(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    populate(sqlite_url)
    code, out, _ = run_cli(capsys, "history", "--kind", "fills", "--since", "2030-01-01T00:00:00+00:00",
                           "--set", f"database.url={sqlite_url}")
    assert code == 0 and out.strip() == "no fills recorded since 2030-01-01T00:00:00+00:00"


@pytest.mark.parametrize("command", ["state", "history"])
def test_missing_database_is_a_clear_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = tmp_path / "never" / "engine.db"
    code, out, err = run_cli(capsys, command, "--set", f"database.url=sqlite:///{path}")
    assert code == 1 and out == ""
    assert f"no database at {path} yet" in err and "Traceback" not in err
    assert not path.exists() and not path.parent.exists()


def test_bad_since_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["history", "--since", "yesterday"])
    assert info.value.code == 2
    assert "--since 'yesterday' is not an ISO date or datetime" in capsys.readouterr().err


def test_config_file_selects_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'from-config.db'}"
    populate(url)
    config = tmp_path / "engine.yaml"
    config.write_text(f"database:\n  url: \"{url}\"\n")
    code, out, _ = run_cli(capsys, "state", "--json", "--config", str(config))
    assert code == 0 and json.loads(out)["accounts"][0]["id"] == 1001


@pytest.mark.system
def test_entry_point_prints_history(sqlite_url: str) -> None:
    populate(sqlite_url)
    done = subprocess.run(
        [sys.executable, "-m", "engine", "history", "--kind", "connection", "--json", "--set",
         f"database.url={sqlite_url}"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [r["cause"] for r in json.loads(done.stdout)] == ["ws closed 1006"]
