"""CPU per Telegram message, by HTTP layer: ``python -m tests.bench.telegram_transport``.

Sends ``--messages`` ``sendMessage`` calls (each with a "received" button, as an alert's) to the Bot API simulator,
``--in-flight`` at a time, in its own process (``tests.bench.vendors``, ``--latency`` seconds before each answer),
through each of these in turn, and prints this process's CPU per message for each:

- ``bare aiohttp``: the floor, one ``aiohttp.ClientSession`` posting the same form fields PTB sends, no PTB;
- ``PTB + HTTPXRequest``: python-telegram-bot on its default HTTP layer (httpx), as the channel used it;
- ``PTB + AiohttpRequest``: python-telegram-bot on ``channels.telegram.transport.AiohttpRequest``;
- ``TelegramChannel``: the channel as it is (its request class, trace, bound and spacing off), ``send``.

Each round goes through every variant once, in turn, so that a machine busy with something else weighs on them
alike; the figure printed is each variant's median over ``--rounds``. ``--json`` writes the figures too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.request import BaseRequest, HTTPXRequest

from channels.base import OutboundMessage
from channels.telegram import POOL_SIZE, TelegramChannel
from channels.telegram.transport import AiohttpRequest
from dispatcher.core.models import ChannelName, Language, Urgency
from tests.bench import vendors

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Cambriolage rue du Parc il y a 10 minutes, voiture grise 1-ABC-123."
CHATS = 900_000_000
#: A variant: given the Bot API's base URL and the messages in flight, a context yielding the send of message i.
Variant = Callable[[str, int], "AsyncIterator[Callable[[int], Awaitable[Any]]]"]


def _markup(i: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Bien reçu", callback_data=f"ack:bench:{i}")]])


@asynccontextmanager
async def bare_aiohttp(base_url: str, in_flight: int) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    url = f"{base_url}/bot{vendors.BOT_TOKEN}/sendMessage"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:

        async def send(i: int) -> Any:
            markup = json.dumps(_markup(i).to_dict())
            form = {"chat_id": str(CHATS + i), "text": TEXT, "reply_markup": markup}
            async with session.post(url, data=form) as response:
                return json.loads(await response.read())

        yield send


def _ptb(request: Callable[[int], BaseRequest]) -> Variant:
    @asynccontextmanager
    async def variant(base_url: str, in_flight: int) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
        bot = Bot(vendors.BOT_TOKEN, base_url=f"{base_url}/bot", request=request(in_flight))
        try:
            yield lambda i: bot.send_message(chat_id=CHATS + i, text=TEXT, reply_markup=_markup(i))
        finally:
            await bot.request.shutdown()

    return variant


@asynccontextmanager
async def channel(base_url: str, in_flight: int) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    telegram = TelegramChannel(
        token=SecretStr(vendors.BOT_TOKEN), api_base_url=base_url, timeout=30, pool_size=min(in_flight, POOL_SIZE)
    )
    await telegram.prepare()
    try:
        yield lambda i: telegram.send(_message(i))
    finally:
        await telegram.close()


def _message(i: int) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"bench:telegram:{i}",
        alert_id="bench",
        member_id=str(i),
        channel=ChannelName.TELEGRAM,
        address=str(CHATS + i),
        language=Language.FR,
        urgency=Urgency.URGENT,
        subject="",
        text=TEXT,
        ack_label="Bien reçu",
        ack_data=f"ack:bench:{i}",
    )


VARIANTS: dict[str, Variant] = {
    "bare aiohttp": bare_aiohttp,
    "PTB + HTTPXRequest": _ptb(lambda n: HTTPXRequest(connection_pool_size=n, pool_timeout=None)),
    "PTB + AiohttpRequest": _ptb(lambda n: AiohttpRequest(pool_size=n, timeout=30)),
    "TelegramChannel": channel,
}


async def cpu_per_message(variant: Variant, base_url: str, *, messages: int, in_flight: int) -> float:
    """This process's CPU seconds per message, sending ``messages`` with ``in_flight`` at a time (after a warm-up
    of one message per connection, not counted)."""
    async with variant(base_url, in_flight) as send:
        await asyncio.gather(*(send(i) for i in range(in_flight)))
        pending = iter(range(in_flight, in_flight + messages))

        async def sender() -> None:
            for i in pending:
                await send(i)

        cpu = time.process_time()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        return (time.process_time() - cpu) / messages


async def measure(base_url: str, *, messages: int, in_flight: int, rounds: int) -> dict[str, float]:
    """Each variant's median CPU seconds per message over ``rounds`` rounds of every variant in turn."""
    found: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_number in range(1, rounds + 1):
        for name, variant in VARIANTS.items():
            found[name].append(await cpu_per_message(variant, base_url, messages=messages, in_flight=in_flight))
            print(f"   round {round_number}, {name}: {1000 * found[name][-1]:.3f} ms", file=sys.stderr, flush=True)
    return {name: statistics.median(values) for name, values in found.items()}


@asynccontextmanager
async def simulator(latency: float) -> AsyncIterator[str]:
    """The Bot API simulator in a process of its own; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.vendors", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        if not line:
            raise RuntimeError("the vendors' process did not start")
        yield json.loads(line)["telegram"]
    finally:
        process.terminate()
        process.wait(timeout=10)


async def run(*, messages: int, in_flight: int, rounds: int, latency: float) -> dict[str, float]:
    async with simulator(latency) as base_url:
        return await measure(base_url, messages=messages, in_flight=in_flight, rounds=rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per variant and round (2000)")
    parser.add_argument("--in-flight", type=int, default=POOL_SIZE, help=f"messages in flight ({POOL_SIZE})")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant (3)")
    parser.add_argument("--latency", type=float, default=0.1, help="simulated Bot API latency, seconds (0.1)")
    parser.add_argument("--json", type=Path, help="also write the figures (ms per message) to this file")
    args = parser.parse_args(argv)
    figures = asyncio.run(
        run(messages=args.messages, in_flight=args.in_flight, rounds=args.rounds, latency=args.latency)
    )
    floor = figures["bare aiohttp"]
    print(f"CPU per message, median of {args.rounds} rounds of {args.messages}, {args.in_flight} in flight:")
    for name, seconds in figures.items():
        print(f"  {name:<22} {1000 * seconds:6.3f} ms   {seconds / floor:5.2f} x bare aiohttp")
    if args.json:
        args.json.write_text(json.dumps({k: round(1000 * v, 4) for k, v in figures.items()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
