"""``python -m simulator.bench``: the user hub's sustained event rate to one client over loopback.

Why it exists: the engine's event path must keep up with what a hub can push, and the simulator must not be the
bottleneck of the engine's own benchmarks or soak tests. The figure is measured end to end: the trading model
publishes (``gateway.burst``), the hub filters, encodes with the shared codec and writes text frames through
hypercorn; a client on a real loopback socket (trio-websocket, in a separate process so the two do not share one
interpreter) reads the frames and decodes every record with the same codec.

The producer is closed-loop: it keeps at most ``window`` events in flight (published but not yet acknowledged by
the client's progress reports), so the hub is never cut off as a slow consumer and the rate is the sustained one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from typing import Any

import trio
import trio.lowlevel
import trio_websocket

from engine.protocol.signalr import (
    Invocation,
    StreamReader,
    encode,
    encode_handshake_request,
)

ACCOUNT = 1001
REPORT_EVERY = 250


async def _client(ws_url: str) -> None:
    """The client process: subscribe, then count events and report progress on stdout."""
    async with trio_websocket.open_websocket_url(ws_url, max_message_size=1 << 24, message_queue_size=4096) as ws:
        reader = StreamReader("client")
        setup = [Invocation(name, (ACCOUNT,), str(i)) for i, name in enumerate(("SubscribeOrders", "SubscribeTrades"))]
        await ws.send_message(encode_handshake_request() + "".join(encode(m) for m in setup))
        count = 0
        reported = 0
        print("READY", flush=True)
        while True:
            for message in reader.feed(await ws.get_message()):
                if isinstance(message, Invocation):
                    count += 1
            if count - reported >= REPORT_EVERY:
                reported = count
                sys.stdout.write(f"{count}\n")
                sys.stdout.flush()


async def measure(seconds: float = 3.0, window: int = 4000, chunk: int = 500) -> dict[str, Any]:
    from simulator.app import build_app
    from simulator.config import SimConfig
    from simulator.gateway import SimulatedGateway
    from simulator.server import serve

    gateway = SimulatedGateway(SimConfig(publish_market_data=False, rate_limits=False))
    app = build_app(gateway)
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(lambda task_status: serve(gateway, app=app, task_status=task_status))
        user = next(iter(gateway.config.users))
        token = gateway.tokens.issue(user)
        ws_url = url.replace("http://", "ws://") + f"/hubs/user?access_token={token}"
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "simulator.bench", "--client", ws_url], stdout=subprocess.PIPE)
        assert process.stdout is not None
        received = 0
        buffer = b""

        async def progress() -> None:
            nonlocal received, buffer
            assert process.stdout is not None
            chunk_bytes = await process.stdout.receive_some(65536)
            if not chunk_bytes:
                raise RuntimeError("bench client exited early")
            *lines, buffer = (buffer + chunk_bytes).split(b"\n")
            for line in lines:
                if line.strip().isdigit():
                    received = int(line)

        try:
            with trio.fail_after(30):
                while b"READY" not in buffer:
                    buffer += await process.stdout.receive_some(65536)
                buffer = buffer.split(b"READY", 1)[1]
                await trio.sleep(0.2)  # let the subscriptions land
            published = 0
            started = time.perf_counter()
            start_received = received
            deadline = started + seconds
            with trio.fail_after(seconds + 30):
                while time.perf_counter() < deadline:
                    if published - received < window:
                        gateway.burst(ACCOUNT, chunk)
                        published += chunk
                        await trio.lowlevel.checkpoint()
                    else:
                        await progress()
                elapsed = time.perf_counter() - started
                delivered = received - start_received
        finally:
            process.kill()
            await process.wait()
            nursery.cancel_scope.cancel()
    rate = delivered / elapsed
    return {
        "events_per_s": round(rate),
        "events": delivered,
        "seconds": round(elapsed, 3),
        "target_events_per_s": 5000,
        "passed": rate >= 5000,
    }


def run() -> dict[str, Any]:
    """Entry point for benchmark dispatchers: one measurement with the defaults."""
    return trio.run(measure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement duration (default 3)")
    parser.add_argument("--window", type=int, default=4000, help="events in flight at most (default 4000)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--client", metavar="WS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        with contextlib.suppress(KeyboardInterrupt, trio_websocket.ConnectionClosed, BrokenPipeError):
            trio.run(_client, args.client)
        return 0
    if args.seconds <= 0 or args.window <= 0:
        parser.error("--seconds and --window must be positive")
    result = trio.run(measure, args.seconds, args.window)
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "ok" if result["passed"] else "BELOW TARGET"
        print(f"user hub -> one client over loopback: {result['events_per_s']:,} events/s "
              f"({result['events']:,} events in {result['seconds']} s; target >= 5,000/s: {verdict})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
