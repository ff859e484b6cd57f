"""The baselines the service is measured against, in the same run and against the same simulators.

The ceiling: the vendors' client libraries alone, driven by a bare asyncio loop with the
concurrency the service is configured for; no Redis, no queue, nothing but the requests.
Each library gets its best settings: twilio's aiohttp client with an unbounded connection pool,
python-telegram-bot on the aiohttp request class the service uses (faster than its default httpx one)
with a pool as large as the concurrency, one aiosmtplib connection per
concurrent sender (an SMTP session carries one message at a time), pywa's async client on an httpx
pool as large as the concurrency, sending the same template message the service sends.

The naive design: one RQ job per delivery, run by RQ's default forking worker; the job builds
its client, sends its one message, and closes. The worker process imports the job's module
before it starts, so that no fork pays for the imports: the naive design at its best.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import redis
from pywa.types.templates import TemplateLanguage
from pywa_async import WhatsApp
from rq import Queue
from telegram import Bot
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from channels.base import Purpose
from channels.telegram.transport import AiohttpRequest
from channels.whatsapp.templates import parameter, template_name
from tests.bench import vendors

TEXT = "Cambriolage rue du Parc il y a 10 minutes, voiture grise 1-ABC-123."


async def _pump(count: int, concurrency: int, send: Callable[[int], Awaitable[Any]]) -> float:
    """Send ``count`` messages with ``concurrency`` in flight; return the seconds it took."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def sender() -> None:
        while not queue.empty():
            await send(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(min(concurrency, count))))
    return time.perf_counter() - started


async def sms_ceiling(addresses: dict[str, Any], count: int, concurrency: int) -> float:
    http = AsyncTwilioHttpClient()
    client = Client(vendors.ACCOUNT, vendors.AUTH_TOKEN, http_client=http)
    client.api.base_url = addresses["twilio"]
    try:
        return await _pump(
            count,
            concurrency,
            lambda i: client.messages.create_async(to=f"+324790{i:05d}", from_="+3225550101", body=TEXT),
        )
    finally:
        await http.close()


async def telegram_ceiling(addresses: dict[str, Any], count: int, concurrency: int) -> float:
    request = AiohttpRequest(pool_size=concurrency, timeout=30)
    bot = Bot(vendors.BOT_TOKEN, base_url=f"{addresses['telegram']}/bot", request=request)
    async with bot:
        return await _pump(count, concurrency, lambda i: bot.send_message(chat_id=900_000_000 + i, text=TEXT))


async def email_ceiling(addresses: dict[str, Any], count: int, concurrency: int) -> float:
    clients = [
        aiosmtplib.SMTP(hostname=addresses["smtp_host"], port=addresses["smtp_port"]) for _ in range(concurrency)
    ]
    await asyncio.gather(*(c.connect() for c in clients))
    free: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
    for c in clients:
        free.put_nowait(c)

    async def send(i: int) -> None:
        client = await free.get()
        try:
            await client.send_message(_email(i))
        finally:
            free.put_nowait(client)

    try:
        return await _pump(count, concurrency, send)
    finally:
        await asyncio.gather(*(c.quit() for c in clients))


def _email(i: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "PLP alerts <alerts@plp.example>"
    message["To"] = f"c{i}@ceiling.bench.example"
    message["Subject"] = "Alerte urgente"
    message.set_content(TEXT)
    message.add_alternative(f"<p>{TEXT}</p>", subtype="html")
    return message


async def whatsapp_ceiling(addresses: dict[str, Any], count: int, concurrency: int) -> float:
    """The urgent template with its "received" button, as the service sends it, to ``count`` numbers."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30, pool=None)) as session:
        client = WhatsApp(
            phone_id=vendors.WHATSAPP_PHONE_ID,
            token=vendors.WHATSAPP_TOKEN,
            session=session,
            api_version="23.0",
            filter_updates=False,
        )
        session.base_url = f"{addresses['whatsapp']}/v23.0"

        def send(i: int) -> Awaitable[Any]:
            components = [
                {"type": "body", "parameters": [{"type": "text", "text": parameter(TEXT)}]},
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": f"ack:ceiling.{i}"}],
                },
            ]
            return client.send_template(
                to=f"324790{i:05d}",
                name=template_name("plp", Purpose.URGENT, 0),
                language=TemplateLanguage.FRENCH,
                params=components,
                tracker=f"ceiling.{i}",
            )

        return await _pump(count, concurrency, send)


CEILINGS: dict[str, Callable[[dict[str, Any], int, int], Coroutine[Any, Any, float]]] = {
    "sms": sms_ceiling,
    "telegram": telegram_ceiling,
    "email": email_ceiling,
    "whatsapp": whatsapp_ceiling,
}
#: The channels of the fan-out's mix (and of the naive design's jobs): the three of the first figures, kept so
#: that the mix stays comparable with them; WhatsApp is measured on its own.
MIX = ("sms", "telegram", "email")


async def mix_ceiling(addresses: dict[str, Any], count: int, concurrency: dict[str, int]) -> float:
    """The three libraries of the mix at once, ``count`` sends each: the seconds until the last is done."""
    started = time.perf_counter()
    await asyncio.gather(*(CEILINGS[channel](addresses, count, concurrency[channel]) for channel in MIX))
    return time.perf_counter() - started


# -- the naive design: one RQ job per delivery ------------------------------------------------


def naive_send(channel: str, index: int, addresses: dict[str, Any]) -> None:
    """An RQ job: send one message over ``channel`` with a client of its own."""
    asyncio.run(CEILINGS[channel](addresses, 1, 1))


def naive(redis_url: str, addresses: dict[str, Any], count: int, *, workers: int, folder: str) -> float:
    """Run ``count`` one-delivery jobs (the three channels in turn) on ``workers`` forking RQ workers.

    Returns the seconds from the first job's start to the last job's end, as RQ recorded them.
    """
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("naive", connection=connection)
    channels = list(MIX)
    jobs = [queue.enqueue(naive_send, channels[i % 3], i, addresses, result_ttl=600) for i in range(count)]
    # Without RQ's command channel: its thread reads with a 60-second timeout, and redis-py 8 joins that thread
    # when the worker stops, so a burst worker could take a minute to exit. No command is sent to these workers.
    script = (
        "import tests.bench.baselines, sys; from rq import Queue, Worker; from redis import Redis; "
        "c = Redis.from_url(sys.argv[1]); W = type('NaiveWorker', (Worker,), {'subscribe': lambda self: None}); "
        "W([Queue('naive', connection=c)], connection=c).work(burst=True, logging_level='WARNING')"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(os.path.join(folder, "naive-workers.log"), "ab") as log:
        processes = [
            subprocess.Popen([sys.executable, "-c", script, redis_url], env=env, stdout=log, stderr=subprocess.STDOUT)
            for _ in range(workers)
        ]
        for process in processes:
            process.wait()
    for job in jobs:
        job.refresh()
    failed = [job.id for job in jobs if job.get_status() != "finished"]
    if failed:
        raise RuntimeError(f"{len(failed)} naive jobs did not finish: see {folder}/naive-workers.log")
    started = min(job.started_at for job in jobs if job.started_at)
    ended = max(job.ended_at for job in jobs if job.ended_at)
    queue.delete(delete_jobs=True)
    connection.close()
    return (ended - started).total_seconds()
