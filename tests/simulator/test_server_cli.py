"""``python -m engine simulate`` as a real process: prints the URLs and credentials, serves REST and hubs, and stops
cleanly on SIGINT (Ctrl-C) and SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest
import trio
import trio_websocket

from engine.protocol.signalr import HandshakeResponse, StreamReader, encode_handshake_request

pytestmark = pytest.mark.system


@pytest.mark.parametrize("stop_signal", [signal.SIGINT])  # SIGTERM takes the same path
async def test_simulate_cli_serves_and_stops(stop_signal: signal.Signals) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "engine", "simulate", "--port", "0", "--seed", "7"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(20):
            while b"Serving until Ctrl-C." not in output:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, output.decode()
                output += chunk
            text = output.decode()
            base = re.search(r"REST base URL : (http://\S+)", text)
            assert base is not None, text
            url = base.group(1)
            assert f"User hub      : {url}/hubs/user" in text
            assert f"Market hub    : {url}/hubs/market" in text
            assert "userName=sim apiKey=sim-key" in text
            async with httpx.AsyncClient(base_url=url) as http:
                login = (await http.post("/api/Auth/loginKey", json={"userName": "sim", "apiKey": "sim-key"})).json()
            assert login["success"] is True
            ws_url = url.replace("http://", "ws://") + f"/hubs/market?access_token={login['token']}"
            async with trio_websocket.open_websocket_url(ws_url) as ws:
                await ws.send_message(encode_handshake_request())
                assert StreamReader("client").feed(await ws.get_message()) == [HandshakeResponse()]
            process.send_signal(stop_signal)
            assert await process.wait() == 0
            rest = await process.stdout.receive_some(4096)
            assert b"stopping" in rest or b"stopping" in output
    finally:
        if process.returncode is None:
            process.kill()
