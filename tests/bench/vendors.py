"""The vendors of a benchmark: the test suite's Twilio, SMTP, Telegram and WhatsApp simulators in a process of
their own.

``python -m tests.bench.vendors`` starts the four simulators on free loopback ports with the
benchmark's credentials, prints one JSON line with their addresses and the address of a small
control API, and serves until stopped. In their own process, the simulators never share an
event loop (or a core's time slice) with the service or with the load generator they measure, and run ahead
of them for the scheduler where the benchmark runs as root (``tests.simulators.apart.ahead_of_the_service``).

Control API (JSON): ``POST /config`` sets ``latency`` (seconds before each answer),
``callbacks`` (Twilio status callbacks on or off), ``sms_per_sender``, ``calls_per_second``,
``telegram_per_second``, ``telegram_per_chat``, ``whatsapp_per_second`` (the providers' rates, enforced:
``null`` for none); ``POST /reset``
forgets every request seen; ``GET /stats`` counts requests per channel with the first and last
arrival times and the refusals for rate; ``GET /accepted`` lists ``[sid, to, status callback]``
of the SMS accepted; ``GET /received?channel=sms&since=T&contains=X`` lists
``[address, time]`` of requests after ``T`` whose address contains ``X`` (``&text=Y``: of the
messages accepted whose text contains ``Y``). For members answering (the national scenario):
``GET /handles?sms=I&telegram=J&email=K&every=N`` gives what a member needs to answer every
``N``-th message accepted after those positions (SMS ``[to, from]``, Telegram ``[chat id,
button's callback data]``, e-mail its receipt link) and the positions to ask from next;
``GET /firsts?pattern=P`` the first arrival of a message whose text matches the regular
expression ``P``, keyed by its first group; ``POST /callbacks_done`` returns once every
Twilio status callback started has been answered.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import re
import signal
from typing import Any

from aiohttp import web

from tests.simulators.apart import ahead_of_the_service
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.telegram import TelegramSimulator
from tests.simulators.twilio import TwilioSimulator
from tests.simulators.whatsapp import WhatsAppSimulator

ACCOUNT, AUTH_TOKEN = "AC" + "b" * 32, "bench-twilio-auth-token"
BOT_TOKEN = "777:bench-bot-token"
WHATSAPP_TOKEN, WHATSAPP_PHONE_ID = "bench-whatsapp-token", "1001"


class Vendors:
    def __init__(
        self, twilio: TwilioSimulator, smtp: SmtpSimulator, telegram: TelegramSimulator, whatsapp: WhatsAppSimulator
    ) -> None:
        self.twilio, self.smtp, self.telegram, self.whatsapp = twilio, smtp, telegram, whatsapp

    def texts(self, channel: str) -> list[tuple[str, float, str]]:
        """``(address, time, text)`` of the messages accepted on ``channel`` (what the member reads)."""
        if channel == "sms":
            return [(r.to, r.received_at, r.body or "") for r in self.twilio.ledger if r.kind == "sms"]
        if channel == "telegram":
            calls = (c for c in self.telegram.ledger if c.method == "sendMessage")
            return [(str(c.params.get("chat_id")), c.received_at, str(c.params.get("text", ""))) for c in calls]
        if channel == "email":
            return [(m.rcpt_tos[0], m.received_at, _plain(m)) for m in self.smtp.messages]
        raise web.HTTPBadRequest(text=f"no texts for channel {channel!r}: sms, telegram or email")

    def received(self, channel: str) -> list[tuple[str, float]]:
        if channel == "sms":
            return [(r.to, r.received_at) for r in self.twilio.ledger if r.kind == "sms"]
        if channel == "voice":
            return [(r.to, r.received_at) for r in self.twilio.ledger if r.kind == "call"]
        if channel == "telegram":
            return self.telegram.received
        if channel == "email":
            return self.smtp.received
        if channel == "whatsapp":
            return self.whatsapp.received
        raise web.HTTPBadRequest(text=f"unknown channel {channel!r}: sms, voice, telegram, email or whatsapp")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for channel in ("sms", "voice", "telegram", "email", "whatsapp"):
            times = [t for _, t in self.received(channel)]
            result[channel] = {
                "requests": len(times),
                "first": min(times, default=None),
                "last": max(times, default=None),
            }
        result["refused_for_rate"] = {
            "twilio": self.twilio.refused_for_rate,
            "telegram": self.telegram.refused_for_rate,
            "whatsapp": self.whatsapp.refused_for_rate,
        }
        result["twilio_received"] = len(self.twilio.received)
        result["telegram_with_buttons"] = len(self.telegram.received_with_buttons)  # alerts, not answers to members
        return result

    def handles(self, since: dict[str, int], every: int) -> dict[str, Any]:
        """What members need to answer every ``every``-th message accepted from the positions ``since``."""
        sms = [(r.to, r.from_) for r in self.twilio.ledger if r.kind == "sms"]
        buttons = (_ack_data(c.params) for c in self.telegram.ledger if c.method == "sendMessage")
        telegram = [button for button in buttons if button is not None]
        email = self.smtp.messages
        found: dict[str, Any] = {"sms": [], "telegram": [], "email": []}
        for channel, accepted in (("sms", sms), ("telegram", telegram), ("email", email)):
            for position in range(since.get(channel, 0), len(accepted)):
                if position % every == 0:
                    item = accepted[position]
                    found[channel].append(_receipt_link(_plain(item)) if channel == "email" else item)
        found["next"] = {"sms": len(sms), "telegram": len(telegram), "email": len(email)}
        return found

    def firsts(self, pattern: str) -> dict[str, float]:
        """The first arrival of a message whose text matches ``pattern``, keyed by the match's first group."""
        wanted, first = re.compile(pattern), dict[str, float]()
        for channel in ("sms", "telegram", "email"):
            for _, at, text in self.texts(channel):
                found = wanted.search(text)
                if found and at < first.get(found[1], math.inf):
                    first[found[1]] = at
        return first

    def configure(self, body: dict[str, Any]) -> None:
        if "latency" in body:
            latency = float(body["latency"])
            self.twilio.latency = self.telegram.latency = self.smtp.latency = self.whatsapp.latency = latency
        if "callbacks" in body:
            self.twilio.callbacks = bool(body["callbacks"])
        self.twilio.limit(sms_per_sender=body.get("sms_per_sender"), calls=body.get("calls_per_second"))
        rate, per_chat = body.get("telegram_per_second"), body.get("telegram_per_chat")
        self.telegram.limit(per_second=float(rate) if rate else None, per_chat=float(per_chat) if per_chat else None)
        if "whatsapp_per_second" in body:
            rate = body["whatsapp_per_second"]
            self.whatsapp.limit(per_second=float(rate) if rate else None)

    def reset(self) -> None:
        self.twilio.ledger.clear()
        self.twilio.received.clear()
        self.twilio.meters.clear()
        self.telegram.ledger.clear()
        self.telegram.received.clear()
        self.telegram.received_with_buttons.clear()
        self.smtp.received.clear()
        self.smtp.messages.clear()
        self.whatsapp.ledger.clear()
        self.whatsapp.received.clear()
        self.whatsapp.limit(per_second=self.whatsapp.meter.per_second if self.whatsapp.meter else None)
        self.telegram.limit(
            per_second=self.telegram.meter.per_second if self.telegram.meter else None, per_chat=self.telegram.per_chat
        )
        gc.collect()  # the full collection this process skips while a scenario runs (``main``)

    def app(self) -> web.Application:
        async def config(request: web.Request) -> web.Response:
            self.configure(await request.json())
            return web.json_response({"ok": True})

        async def reset(request: web.Request) -> web.Response:
            self.reset()
            return web.json_response({"ok": True})

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(self.stats())

        async def received(request: web.Request) -> web.Response:
            since = float(request.query.get("since", "0"))
            contains = request.query.get("contains", "")
            channel, text = request.query["channel"], request.query.get("text")
            if text is None:
                rows = [(a, t) for a, t in self.received(channel) if t >= since and contains in a]
            else:
                rows = [(a, t) for a, t, body in self.texts(channel) if t >= since and contains in a and text in body]
            return web.json_response(rows)

        async def handles(request: web.Request) -> web.Response:
            since = {channel: int(request.query.get(channel, "0")) for channel in ("sms", "telegram", "email")}
            return web.json_response(self.handles(since, int(request.query.get("every", "1"))))

        async def firsts(request: web.Request) -> web.Response:
            return web.json_response(self.firsts(request.query["pattern"]))

        async def callbacks_done(request: web.Request) -> web.Response:
            await self.twilio.callbacks_done(timeout=float(request.query.get("timeout", "60")))
            return web.json_response({"ok": True})

        async def accepted(request: web.Request) -> web.Response:
            rows = [(r.sid, r.to, r.status_callback) for r in self.twilio.ledger if r.kind == "sms"]
            return web.json_response(rows)

        app = web.Application()
        app.router.add_get("/accepted", accepted)
        app.router.add_post("/config", config)
        app.router.add_post("/reset", reset)
        app.router.add_get("/stats", stats)
        app.router.add_get("/received", received)
        app.router.add_get("/handles", handles)
        app.router.add_get("/firsts", firsts)
        app.router.add_post("/callbacks_done", callbacks_done)
        return app


RECEIPT_LINK = re.compile(r"https?://\S+/v1/r/\S+")


def _receipt_link(text: str) -> str | None:
    found = RECEIPT_LINK.search(text)
    return found[0] if found else None


def _ack_data(params: dict[str, Any]) -> list[Any] | None:
    """``[chat id, callback data]`` of a message with an alert's "received" button; None for other messages."""
    rows = (params.get("reply_markup") or {}).get("inline_keyboard") or []
    data = [button.get("callback_data", "") for row in rows for button in row if button.get("callback_data")]
    return [int(params["chat_id"]), data[0]] if data else None


def _plain(mail: Any) -> str:
    body = mail.message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


async def serve(latency: float) -> None:
    async with (
        TwilioSimulator(account_sid=ACCOUNT, auth_token=AUTH_TOKEN, latency=latency, callbacks=False) as twilio,
        SmtpSimulator() as smtp,
        TelegramSimulator(token=BOT_TOKEN, latency=latency) as telegram,
        WhatsAppSimulator(token=WHATSAPP_TOKEN, phone_id=WHATSAPP_PHONE_ID, latency=latency) as whatsapp,
    ):
        smtp.latency = latency
        await telegram.warm_up()  # a fresh process's first request is slow: two that follow it would arrive together
        vendors = Vendors(twilio, smtp, telegram, whatsapp)
        runner = web.AppRunner(vendors.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        control = f"http://127.0.0.1:{runner.addresses[0][1]}"
        addresses = {
            "control": control,
            "twilio": twilio.base_url,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "telegram": telegram.base_url,
            "whatsapp": whatsapp.base_url,
        }
        print(json.dumps(addresses), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()


#: Young collections between two full ones: never reached (``main``).
FULL_COLLECTIONS_NEVER = 2**31 - 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds before each answer (default 0.1)")
    args = parser.parse_args(argv)
    ahead_of_the_service()
    # A referee's arrival stamps are the figures: its ledgers of every request grow through a scenario, and a
    # full collection going over them held this process 100 to 560 ms (a 50,000-SMS backlog), stamping the
    # requests that arrived meanwhile late. It collects its oldest generation between scenarios only (``reset``).
    gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTIONS_NEVER)
    asyncio.run(serve(args.latency))


if __name__ == "__main__":
    main()
