"""P&L arithmetic: realized from trades (P&L minus fees), unrealized from positions at quotes and tick economics."""

from __future__ import annotations

import pytest

from engine.protocol.enums import PositionType
from engine.risk import ContractSpec, position_pnl, realized_pnl, unrealized_pnl
from engine.risk.pnl import mark_price

from .builders import ES, MNQ, SPECS, position, quote, trade


@pytest.mark.parametrize(
    ("contract", "long", "size", "avg", "mark", "expected"),
    [
        (MNQ, True, 1, 20_000.0, 20_010.0, 20.0),  # 40 ticks * $0.50
        (MNQ, True, 3, 20_000.0, 19_990.0, -60.0),
        (MNQ, False, 2, 20_000.0, 19_990.0, 40.0),  # a short gains when the price falls
        (MNQ, False, 2, 20_000.0, 20_000.25, -1.0),  # one tick against two contracts
        (ES, True, 1, 6_000.0, 6_001.0, 50.0),  # 4 ticks * $12.50
        (ES, False, 5, 6_000.0, 6_010.0, -2_500.0),
    ],
)
def test_position_pnl(contract: str, long: bool, size: int, avg: float, mark: float, expected: float) -> None:
    assert position_pnl(position(contract, size, long, avg), mark, SPECS[contract]) == pytest.approx(expected)


def test_realized_is_pnl_minus_fees_of_every_fill_and_ignores_voided_trades() -> None:
    trades = [
        trade(1, 10, pnl=None, fees=0.37),  # opening half-turn: no P&L, still fees
        trade(2, 11, pnl=25.0, fees=0.37),
        trade(3, 12, pnl=-100.0, fees=0.74),
        trade(4, 13, pnl=-999.0, fees=5.0, voided=True),
    ]
    assert realized_pnl(trades) == pytest.approx(25.0 - 100.0 - 0.37 - 0.37 - 0.74)
    assert realized_pnl([]) == 0.0


@pytest.mark.parametrize(
    ("mode", "long", "q", "expected"),
    [
        ("last", True, quote(last=10.0, bid=9.0, ask=11.0), 10.0),
        ("bidAsk", True, quote(last=10.0, bid=9.0, ask=11.0), 9.0),  # a long closes by selling at the bid
        ("bidAsk", False, quote(last=10.0, bid=9.0, ask=11.0), 11.0),
        ("last", True, quote(bid=9.0, ask=11.0), 9.0),  # no last trade yet: fall back on the closing side
        ("bidAsk", False, quote(last=10.0), 10.0),
        ("last", True, quote(), None),
    ],
)
def test_mark_price(mode: str, long: bool, q: object, expected: float | None) -> None:
    assert mark_price(q, position(long=long), mode) == expected  # type: ignore[arg-type]


def test_unrealized_reports_what_it_cannot_value() -> None:
    positions = [
        position(MNQ, 2, True, 20_000.0),
        position(ES, 1, False, 6_000.0),
        position("CON.F.US.GCE.Z25", 1, True, 3_000.0),  # no spec
        position("CON.F.US.CLE.Z25", 1, True, 70.0),  # no quote
    ]
    specs = {**SPECS, "CON.F.US.CLE.Z25": ContractSpec("CON.F.US.CLE.Z25", 0.01, 10.0)}
    quotes = {MNQ: quote(last=20_005.0), ES: quote(last=5_999.0), "CON.F.US.GCE.Z25": quote(last=3_010.0)}
    result = unrealized_pnl(positions, quotes, specs)
    assert result.by_contract == {MNQ: pytest.approx(20.0), ES: pytest.approx(50.0)}  # 20 ticks * $0.50 * 2
    assert result.total == pytest.approx(70.0)
    assert result.unpriced == ("CON.F.US.CLE.Z25", "CON.F.US.GCE.Z25")
    assert (result.missing_quotes, result.missing_specs) == (("CON.F.US.CLE.Z25",), ("CON.F.US.GCE.Z25",))


def test_an_undefined_position_type_is_unpriced_not_zero() -> None:
    undefined = position(MNQ).model_copy(update={"type": PositionType.UNDEFINED})
    result = unrealized_pnl([undefined], {MNQ: quote(last=1.0)}, SPECS)
    assert result.unpriced == (MNQ,) and result.total == 0.0


def test_a_spec_with_a_zero_tick_size_is_refused() -> None:
    with pytest.raises(ValueError, match="tickSize must be > 0"):
        ContractSpec(MNQ, 0.0, 0.5)
