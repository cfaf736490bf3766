"""A simulated user may hold several API keys: each logs in as the same user and trades the same accounts (another
front end beside the engine), a key of another user or an unknown key is refused, and the defaults are the issue's
``sim`` / ``sim-key``."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from engine.gateway.testing import SIM_EPOCH
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from simulator.rest import RestApp
from simulator.transport import SimulatorTransport


async def _login(client: httpx.AsyncClient, user: str, key: str) -> dict[str, Any]:
    answer = await client.post("/api/Auth/loginKey", json={"userName": user, "apiKey": key})
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def test_defaults_are_sim_and_sim_key() -> None:
    config = SimConfig()
    assert config.users == {"sim": "sim-key"} and config.api_keys == {}
    assert {a.user for a in config.accounts} == {"sim"}
    assert config.accepts("sim", "sim-key") and not config.accepts("sim", "sim-key ") and not config.accepts("x", "")


async def test_every_key_of_a_user_logs_in_as_that_user_and_trades_the_same_account(autojump_clock: Any) -> None:
    config = SimConfig(epoch=SIM_EPOCH, users={"sim": "sim-key", "other": "other-key"},
                       api_keys={"sim": ["trader-key", "phone-key"]})
    gateway = SimulatedGateway(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run)
        async with httpx.AsyncClient(transport=SimulatorTransport(RestApp(gateway)), base_url="http://sim") as client:
            tokens = []
            for key in ("sim-key", "trader-key", "phone-key"):
                answer = await _login(client, "sim", key)
                assert answer["success"], key
                tokens.append(answer["token"])
                assert gateway.tokens.user_of(answer["token"]) == "sim"
            for user, key in (("sim", "other-key"), ("other", "trader-key"), ("sim", "wrong")):
                assert not (await _login(client, user, key))["success"], (user, key)
            # both sessions stay valid at once and see the same account
            seen = []
            for token in tokens[:2]:
                r = await client.post("/api/Account/search", json={"onlyActiveAccounts": True},
                                      headers={"Authorization": f"Bearer {token}"})
                seen.append(sorted(a["id"] for a in r.json()["accounts"]))
            assert seen[0] == seen[1] and 1001 in seen[0]
        nursery.cancel_scope.cancel()
