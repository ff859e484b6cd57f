"""The vendors' host: the Twilio, SMTP and Telegram simulators in a process of their own, on one address.

``python -m tests.hosts.vendors --host 10.77.0.8`` serves the three simulators on that address
(ports 0: free ones; ``--twilio-port`` etc. to choose), with the hosts suite's credentials and a
latency per request, prints one JSON line with their addresses and the address of a small
control API, and serves until SIGTERM. The Twilio simulator posts its status callbacks from this
host to the URLs the service gave it, on the web hosts.

Control API (JSON):

- ``GET /ledger``: what the providers took: ``sms`` (``to``, the ``callback`` URL it was given,
  ``received_at``, the ``callbacks`` posted as ``[url, HTTP status or null]``), ``email``
  (``message_id``, ``to``, ``received_at``), and ``in_flight``, the requests taken and not answered yet;
- ``GET /count``: ``taken``, how many messages (SMS and e-mails) the providers took, and ``in_flight``;
- ``GET /mail?to=ADDRESS``: the plain text of every message received for that address;
- ``POST /callbacks-done``: answers once every status callback started so far was posted and
  answered (504 after ``?timeout=`` seconds, default 20).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

from aiohttp import web

from tests.simulators.smtp import ReceivedMail, SmtpSimulator
from tests.simulators.telegram import TelegramSimulator
from tests.simulators.twilio import TwilioSimulator

ACCOUNT, AUTH_TOKEN = "AC" + "7" * 32, "hosts-twilio-auth-token"
BOT_TOKEN = "7707:hosts-bot-token"
SMS_FROM, VOICE_FROM = "+3225550177", "+3225550178"


class Vendors:
    """The three simulators, and the control API that reads them."""

    def __init__(self, twilio: TwilioSimulator, smtp: SmtpSimulator, telegram: TelegramSimulator) -> None:
        self.twilio, self.smtp, self.telegram = twilio, smtp, telegram

    def ledger(self) -> dict[str, Any]:
        sms = [
            {
                "to": record.to,
                "callback": record.status_callback,
                "received_at": record.received_at,
                "callbacks": [[c.url, c.answered] for c in record.callbacks],
            }
            for record in self.twilio.ledger
            if record.kind == "sms"
        ]
        email = [
            {"message_id": m.message_id, "to": m.rcpt_tos[0], "received_at": m.received_at} for m in self.smtp.messages
        ]
        return {"sms": sms, "email": email, **self.count()}

    def count(self) -> dict[str, int]:
        in_flight = self.twilio.in_flight + self.smtp.in_flight + self.telegram.in_flight
        return {"taken": len(self.twilio.ledger) + len(self.smtp.messages), "in_flight": in_flight}

    def mail(self, to: str) -> list[str]:
        return [_plain(mail) for mail in self.smtp.messages if to in mail.rcpt_tos]

    def app(self) -> web.Application:
        async def ledger(request: web.Request) -> web.Response:
            return web.json_response(self.ledger())

        async def count(request: web.Request) -> web.Response:
            return web.json_response(self.count())

        async def mail(request: web.Request) -> web.Response:
            return web.json_response(self.mail(request.query["to"]))

        async def callbacks_done(request: web.Request) -> web.Response:
            try:
                await self.twilio.callbacks_done(timeout=float(request.query.get("timeout", "20")))
            except TimeoutError:
                raise web.HTTPGatewayTimeout(text="status callbacks still being posted") from None
            return web.json_response({"done": True})

        app = web.Application()
        app.router.add_get("/ledger", ledger)
        app.router.add_get("/count", count)
        app.router.add_get("/mail", mail)
        app.router.add_post("/callbacks-done", callbacks_done)
        return app


def _plain(mail: ReceivedMail) -> str:
    body = mail.message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


async def serve(host: str, *, latency: float, ports: dict[str, int]) -> None:
    async with (
        TwilioSimulator(
            account_sid=ACCOUNT, auth_token=AUTH_TOKEN, latency=latency, host=host, port=ports["twilio"]
        ) as twilio,
        SmtpSimulator(host=host, port=ports["smtp"]) as smtp,
        TelegramSimulator(token=BOT_TOKEN, latency=latency, host=host, port=ports["telegram"]) as telegram,
    ):
        smtp.latency = latency
        runner = web.AppRunner(Vendors(twilio, smtp, telegram).app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, ports["control"]).start()
        addresses = {
            "control": f"http://{host}:{runner.addresses[0][1]}",
            "twilio": twilio.base_url,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "telegram": telegram.base_url,
        }
        print(json.dumps(addresses), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="the address to serve on (default 127.0.0.1)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer (default 0.05)")
    for name in ("twilio", "smtp", "telegram", "control"):
        parser.add_argument(f"--{name}-port", type=int, default=0, help=f"{name}'s port (default 0: a free one)")
    args = parser.parse_args(argv)
    ports = {name: getattr(args, f"{name}_port") for name in ("twilio", "smtp", "telegram", "control")}
    asyncio.run(serve(args.host, latency=args.latency, ports=ports))


if __name__ == "__main__":
    main()
