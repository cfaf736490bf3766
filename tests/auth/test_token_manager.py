"""Token manager (GAP-API-001/-002, SCENARIO-005) against the in-process simulator, in virtual time."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import trio

from engine.auth.manager import jwt_expiry
from engine.auth.storage import EncryptedFileTokenStore, MemoryTokenStore, StoredToken, generate_key
from engine.gateway.errors import PermanentLoginError
from engine.gateway.testing import SIM_EPOCH, simulated_client
from machines.token import TokenState
from simulator.config import SimConfig
from tests.gateway.sim_helpers import ScriptedTransport

LOGIN = "/api/Auth/loginKey"
VALIDATE = "/api/Auth/validate"


def _jwt(claims: dict[str, object]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(b'{}')}.{b64(json.dumps(claims).encode())}.sig"


def _scripted() -> tuple[list[ScriptedTransport], object]:
    holder: list[ScriptedTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        holder.append(ScriptedTransport(inner))
        return holder[0]

    return holder, wrap


def test_jwt_expiry_reads_exp_and_refuses_non_jwts() -> None:
    assert jwt_expiry(_jwt({"exp": 1_800_000_000})) == datetime.fromtimestamp(1_800_000_000, UTC)
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry(_jwt({"sub": "x"})) is None
    assert jwt_expiry("a.!!!.c") is None


async def test_first_call_logs_in_once_with_expiry_from_the_jwt(autojump_clock: object) -> None:
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=5 * 3600)) as sim:
        await sim.client.search_accounts()
        await sim.client.search_open_orders(1001)
        tokens = sim.client.tokens
        assert tokens.logins == 1 and tokens.state is TokenState.VALID
        assert tokens.lifecycle.expires_at is not None
        assert tokens.lifecycle.expires_at - trio.current_time() == pytest.approx(5 * 3600, abs=1.5)


async def test_proactive_refresh_through_validate_buffer_before_expiry(autojump_clock: object) -> None:
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=3 * 3600)) as sim:
        first = await sim.client.tokens.current()
        await trio.sleep(3600 - 5)
        assert sim.client.tokens.refreshes == 0
        await trio.sleep(10)  # the refresh was due 7200 s before the 3 h expiry
        assert sim.client.tokens.refreshes == 1 and sim.client.tokens.logins == 1
        second = await sim.client.tokens.current()
        assert second.revision == first.revision + 1 and second.source == "refresh"
        assert second.expires_at > first.expires_at


async def test_token_shorter_than_the_buffer_refreshes_at_half_life(autojump_clock: object) -> None:
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=1200)) as sim:
        await sim.client.tokens.current()
        await trio.sleep(590)
        assert sim.client.tokens.refreshes == 0
        await trio.sleep(20)
        assert sim.client.tokens.refreshes == 1


async def test_concurrent_requests_during_a_refresh_cause_exactly_one_refresh(autojump_clock: object) -> None:
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=3 * 3600), run_token_refresh=False) as sim:
        await sim.client.tokens.current()
        await trio.sleep(3600 + 1)  # refresh due, nobody refreshed yet
        before = sim.client.tokens.renewals
        results: list[int] = []

        async def read() -> None:
            results.append(len(await sim.client.search_open_orders(1001)))

        async with trio.open_nursery() as nursery:
            for _ in range(25):
                nursery.start_soon(read)
        assert len(results) == 25
        assert sim.client.tokens.refreshes == 1 and sim.client.tokens.renewals == before + 1


async def test_failed_validate_is_retried_then_falls_back_to_login(autojump_clock: object) -> None:
    holder, wrap = _scripted()
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=3 * 3600), wrap_transport=wrap,
                                run_token_refresh=False) as sim:
        await sim.client.tokens.current()
        transport = holder[0]
        transport.script(VALIDATE, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500,
                         500, 500, 500, 500)
        await sim.client.tokens.refresh_now()
        # 1 + maxRetries(3) validate attempts (each itself retried as a read is not: auth calls are single attempts)
        assert transport.counts[VALIDATE] == 4
        assert transport.counts[LOGIN] == 2
        assert sim.client.tokens.logins == 2 and sim.client.tokens.refreshes == 0


async def test_transient_login_errors_are_retried_with_the_configured_delays(autojump_clock: object) -> None:
    holder, wrap = _scripted()
    async with simulated_client(wrap_transport=wrap) as sim:
        holder[0].script(LOGIN, 503, 503)
        start = trio.current_time()
        await sim.client.search_accounts()
        assert holder[0].counts[LOGIN] == 3
        assert trio.current_time() - start == pytest.approx(1.0 + 5.0, abs=0.1)  # retryDelayMs [1000, 5000, ...]


async def test_bad_api_key_stops_with_a_clear_message_and_no_retry_storm(autojump_clock: object) -> None:
    holder, wrap = _scripted()
    async with simulated_client(overrides={"credentials": {"api_key": "wrong-key-123"}}, wrap_transport=wrap) as sim:
        for _ in range(5):
            with pytest.raises(PermanentLoginError, match="INVALID_CREDENTIALS"):
                await sim.client.search_accounts()
        assert holder[0].counts[LOGIN] == 1
        assert sim.client.tokens.state is TokenState.FAILED
        assert "wrong-key-123" not in str(sim.client.tokens.failure)


async def test_missing_credentials_are_a_permanent_error_naming_the_setting(autojump_clock: object) -> None:
    holder, wrap = _scripted()
    async with simulated_client(overrides={"credentials": {"username": None, "api_key": None}},
                                wrap_transport=wrap) as sim:
        with pytest.raises(PermanentLoginError, match=r"credentials\.api_key"):
            await sim.client.search_accounts()
        assert holder[0].counts[LOGIN] == 0
        assert await sim.client.ping() is True  # unauthenticated calls still work


async def test_expired_token_on_the_server_triggers_one_renewal_and_one_retry(autojump_clock: object) -> None:
    holder, wrap = _scripted()
    async with simulated_client(wrap_transport=wrap) as sim:
        first = await sim.client.tokens.current()
        sim.gateway.faults.arm("expire_tokens")
        orders = await sim.client.search_open_orders(1001)
        assert orders == []
        assert sim.client.tokens.revision == first.revision + 1
        assert holder[0].counts["/api/Order/searchOpen"] == 2
        assert holder[0].counts[LOGIN] == 2


async def test_revoked_token_leads_to_a_fresh_login(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        await sim.client.search_accounts()
        sim.gateway.faults.arm("revoke_tokens")
        assert len(await sim.client.search_accounts()) == 3
        assert sim.client.tokens.logins == 2


async def test_a_401_of_an_already_replaced_revision_renews_nothing(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        first = await sim.client.tokens.current()
        second = await sim.client.login_key()
        assert second.revision == first.revision + 1
        await sim.client.tokens.handle_unauthorized(first.revision)
        assert sim.client.tokens.revision == second.revision and sim.client.tokens.logins == 2


async def test_pre_operation_validation_refreshes_when_the_token_would_not_outlast_it(autojump_clock: object) -> None:
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=10 * 3600), run_token_refresh=False) as sim:
        first = await sim.client.tokens.current()
        await trio.sleep(3600)
        same = await sim.client.tokens.current(min_valid_s=600)
        assert same.revision == first.revision
        renewed = await sim.client.tokens.current(min_valid_s=10 * 3600)
        assert renewed.revision == first.revision + 1 and sim.client.tokens.refreshes == 1


async def test_every_new_token_is_announced_to_subscribers(autojump_clock: object) -> None:
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=1200)) as sim:
        channel = sim.client.tokens.subscribe()
        first = await sim.client.tokens.current()
        seen = [await channel.receive()]
        waited = await sim.client.tokens.wait_for_revision(first.revision)  # the next one, by proactive refresh
        seen.append(await channel.receive())
        assert [t.revision for t in seen] == [first.revision, waited.revision]
        assert waited.revision == first.revision + 1
        assert "eyJ" not in repr(waited) and waited.token not in str(waited)


async def test_stored_token_is_restored_without_a_login(autojump_clock: object) -> None:
    _, wrap = _scripted()
    store = MemoryTokenStore()
    async with simulated_client(wrap_transport=wrap, token_store=store) as sim:
        await sim.client.search_accounts()
        saved = store.load()
        assert saved is not None and saved.revision == 1
    holder2, wrap2 = _scripted()
    config = SimConfig(epoch=SIM_EPOCH)  # same JWT secret: the stored token is valid on this gateway too
    async with simulated_client(config, wrap_transport=wrap2, token_store=store) as sim2:
        await sim2.client.start()
        assert sim2.client.tokens.revision == 1
        assert len(await sim2.client.search_accounts()) == 3
        assert holder2[0].counts[LOGIN] == 0


async def test_an_expired_stored_token_is_ignored_and_revisions_keep_growing(autojump_clock: object) -> None:
    store = MemoryTokenStore()
    store.save(StoredToken("stale.token.value", SIM_EPOCH - timedelta(hours=1), 41))
    async with simulated_client(token_store=store) as sim:
        await sim.client.start()
        assert sim.client.tokens.state is TokenState.NONE
        token = await sim.client.tokens.current()
        assert token.revision == 42
        saved = store.load()
        assert saved is not None and saved.revision == 42


async def test_encrypted_store_is_written_through_a_thread(autojump_clock: object, tmp_path: object) -> None:
    key = base64.b64decode(generate_key())
    path = tmp_path / "token.bin"  # type: ignore[operator]
    store = EncryptedFileTokenStore(path, key)
    async with simulated_client(token_store=store) as sim:
        token = await sim.client.tokens.current()
    loaded = EncryptedFileTokenStore(path, key).load()
    assert loaded is not None and loaded.revision == token.revision and loaded.token == token.token
    assert token.token.encode() not in path.read_bytes()


async def test_no_token_or_api_key_in_captured_logs(autojump_clock: object, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens_seen: list[str] = []
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=1200)) as sim:
        channel = sim.client.tokens.subscribe()
        await sim.client.search_accounts()
        sim.gateway.faults.arm("expire_tokens")
        await sim.client.search_open_orders(1001)
        await trio.sleep(1300)
        await sim.client.search_accounts()
        while True:
            try:
                tokens_seen.append(channel.receive_nowait().token)
            except trio.WouldBlock:
                break
    assert len(tokens_seen) >= 3
    text = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert "sim-key" not in text
    for token in tokens_seen:
        assert token not in text
        assert token.split(".")[2] not in text
