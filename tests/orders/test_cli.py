"""``order place|cancel`` and ``flatten`` commands, run in-process against ``--simulate``."""

from __future__ import annotations

import json

import pytest

from engine.__main__ import main

PLACE = ["order", "place", "--account", "1001", "--contract", "CON.F.US.MES.Z26", "--side", "buy", "--simulate"]


def test_place_prints_the_final_outcome_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*PLACE, "--size", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "accepted" and out["state"] == "filled" and out["filled_qty"] == 2
    assert out["custom_tag"].startswith("tx-") and out["attempts"] == 1


def test_rejected_order_is_a_known_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["order", "place", "--account", "1001", "--contract", "CON.F.US.NOPE.Z26", "--side", "sell", "--size", "1",
            "--simulate"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("place: rejected")


def test_cancel_of_an_unknown_order_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "cancel", "--account", "1001", "--order", "424242", "--simulate", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "rejected" and out["code"] == 2


def test_flatten_verifies_flat(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flatten", "--account", "1001", "--simulate", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "accepted" and out["reason"] == "verified flat"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--size", "1", "--type", "limit"], "limit order needs a limit price (--price)"),
        (["--size", "0"], "size must be >= 1"),
        (["--size", "1", "--price", "6000"], "--price is not used with --type market"),
    ],
)
def test_bad_input_is_refused_with_exit_2(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*PLACE, *extra]) == 2
    assert message in capsys.readouterr().err


def test_real_gateway_without_credentials_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("TOPSTEPX_USERNAME", raising=False)
    monkeypatch.delenv("TOPSTEPX_API_KEY", raising=False)
    argv = [a for a in PLACE if a != "--simulate"]
    assert main([*argv, "--size", "1"]) == 2
    assert "TOPSTEPX_USERNAME" in capsys.readouterr().err
