"""The Telegram channel's HTTP layer: python-telegram-bot on aiohttp (``AiohttpRequest``), against the Bot API
simulator on loopback, side by side with PTB's own ``HTTPXRequest`` where they must agree."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest

from channels.telegram.transport import AiohttpRequest
from tests.simulators.faults import Fault, FaultPlan
from tests.simulators.telegram import TelegramSimulator
from tests.support import free_port, unconnectable_port

TOKEN = "123456:AAH-secret_token"
CHAT = 4242


@pytest.fixture
async def tg() -> AsyncIterator[TelegramSimulator]:
    async with TelegramSimulator(token=TOKEN) as simulator:
        yield simulator


def bot_on(base_url: str, request: BaseRequest) -> Bot:
    return Bot(TOKEN, base_url=f"{base_url}/bot", request=request)


async def send_alert(bot: Bot) -> None:
    """A message as the channel sends one: text with accents, a button whose data the webhook reads."""
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Bien reçu ✅", callback_data="ack:a1:telegram:m1")]])
    try:
        await bot.send_message(chat_id=CHAT, text="Cambriolage rue Haute & place du Jeu de Balle", reply_markup=markup)
    finally:
        await bot.request.shutdown()


async def test_a_message_goes_out_as_the_same_bytes_as_through_httpx(tg: TelegramSimulator) -> None:
    """The Bot API receives the very same form from aiohttp as from PTB's httpx layer: same content type, same
    bytes (every field, objects JSON-encoded, urlencoded in the same order)."""
    await send_alert(bot_on(tg.base_url, HTTPXRequest()))
    await send_alert(bot_on(tg.base_url, AiohttpRequest(pool_size=1, timeout=2)))
    through_httpx, through_aiohttp = tg.calls("sendMessage")
    assert through_aiohttp.content_type == through_httpx.content_type == "application/x-www-form-urlencoded"
    assert through_aiohttp.body == through_httpx.body
    assert through_aiohttp.params == through_httpx.params and through_aiohttp.status == 200


async def test_calls_at_once_share_at_most_the_pool_s_connections(tg: TelegramSimulator) -> None:
    """Eight calls at once through a pool of three open three connections: the others wait for one to be free,
    and every call is answered."""
    opened: list[object] = []

    async def count(session: Any, context: SimpleNamespace, params: Any) -> None:
        opened.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(count)
    tg.latency = 0.05
    bot = bot_on(tg.base_url, AiohttpRequest(pool_size=3, timeout=2, trace=trace))
    try:
        await asyncio.gather(*(bot.send_message(chat_id=CHAT + n, text="x") for n in range(8)))
    finally:
        await bot.request.shutdown()
    assert len(opened) == 3
    assert len(tg.calls("sendMessage")) == 8


async def test_a_refused_connection_is_a_network_error_naming_aiohttp_s() -> None:
    """Nothing listening at the Bot API's address: NetworkError, saying which aiohttp error it was."""
    bot = bot_on(f"http://127.0.0.1:{free_port()}", AiohttpRequest(pool_size=1, timeout=2))
    with pytest.raises(NetworkError, match=r"^aiohttp\.ClientConnectorError"):
        await send_alert(bot)


async def test_a_connection_not_made_in_time_is_timed_out() -> None:
    """A Bot API whose address never answers the connection: TimedOut, once the timeout is over."""
    with unconnectable_port() as port:
        bot = bot_on(f"http://127.0.0.1:{port}", AiohttpRequest(pool_size=1, timeout=0.2))
        with pytest.raises(TimedOut):
            await send_alert(bot)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(Fault.TIMEOUT, TimedOut, id="no answer in time"),
        pytest.param(Fault.TAKEN_THEN_RESET, NetworkError, id="closed unanswered"),
    ],
)
async def test_a_request_left_unanswered_fails_as_httpx_s_did(
    tg: TelegramSimulator, fault: Fault, error: type[Exception]
) -> None:
    """No answer within the timeout is TimedOut, a connection closed without an answer a NetworkError, as from
    PTB's httpx layer (the channel reads both as "may have gone": the request was written)."""
    tg.faults = FaultPlan(seed=1, rates={fault: 1.0}, hold=1.0, retry_after=1)
    with pytest.raises(error) as raised:
        await send_alert(bot_on(tg.base_url, AiohttpRequest(pool_size=1, timeout=0.3)))
    assert type(raised.value) is error
    assert [call.status for call in tg.calls("sendMessage")] == [200]  # Telegram had it


async def test_a_call_with_a_file_is_refused_before_anything_goes_out(tg: TelegramSimulator) -> None:
    """The service sends no files: a call uploading one fails (as a NetworkError, PTB's word for a failure of its
    HTTP layer) instead of going out without it."""
    bot = bot_on(tg.base_url, AiohttpRequest(pool_size=1, timeout=2))
    try:
        with pytest.raises(NetworkError, match="does not upload files"):
            await bot.send_document(chat_id=CHAT, document=io.BytesIO(b"%PDF"), filename="plan.pdf")
    finally:
        await bot.request.shutdown()
    assert tg.ledger == []


async def test_a_request_shut_down_opens_again_on_its_next_call(tg: TelegramSimulator) -> None:
    """Shutting down a request never used is harmless; one shut down after a call opens a new session on the next."""
    request = AiohttpRequest(pool_size=1, timeout=2)
    await request.shutdown()
    bot = bot_on(tg.base_url, request)
    await bot.send_message(chat_id=CHAT, text="one")
    await request.shutdown()
    await bot.send_message(chat_id=CHAT, text="two")
    await request.shutdown()
    assert [call.params["text"] for call in tg.calls("sendMessage")] == ["one", "two"]
