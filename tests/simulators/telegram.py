"""The Telegram Bot API on loopback (aiohttp), and members who write to the bot and press its buttons.

    async with TelegramSimulator(token="123:ABC", blocked={42}) as tg:
        settings = Settings(telegram_bot_token="123:ABC", telegram_api_base_url=tg.base_url)
        ...
        [call] = tg.calls("sendMessage")
        status, body = await tg.member_sends(webhook_url, chat_id=7, text="/start tok", secret="s3cret")

It speaks the subset of the Bot API the service uses (``getMe``, ``sendMessage``,
``answerCallbackQuery``, ``editMessageText``, ``setWebhook``, ``deleteWebhook``, ``setMyCommands``: the
menu per language code in ``commands``), with
bodies as python-telegram-bot sends them (form fields, objects JSON-encoded) or as JSON,
and answers with the API's shapes. Every call is written to ``ledger``.

Faults at random rates go into ``faults`` (a ``FaultPlan`` keyed by chat and text, drawn for
``sendMessage`` only; what it did is in ``injected``): a server error is HTTP 503, a reset
closes the connection unanswered, a throttle is a 429 with ``retry_after``; a timeout sends
the message and answers ``hold`` seconds later, "taken then reset" sends it and closes the
connection unanswered, "taken then 5xx" sends it and answers HTTP 502. ``duplicates()`` counts messages sent more
than once to a chat with the same text.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Literal

from aiohttp import ClientSession, web

from tests.simulators.faults import Fault, FaultPlan, Injected, duplicates
from tests.simulators.meter import RateMeter

HOST = "127.0.0.1"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

_INT_FIELDS = frozenset({"chat_id", "message_id", "cache_time", "max_connections"})
_BOOL_FIELDS = frozenset({"show_alert", "drop_pending_updates", "disable_notification", "protect_content"})
_JSON_FIELDS = frozenset(
    {"reply_markup", "entities", "allowed_updates", "link_preview_options", "reply_parameters", "commands", "scope"}
)


class _Secret(Enum):
    REGISTERED = "registered"


#: Default of ``secret=``: the secret token the bot registered with ``setWebhook`` (none: no header).
REGISTERED: Literal[_Secret.REGISTERED] = _Secret.REGISTERED


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Bot API method call: its name, its parameters (decoded), the HTTP status answered."""

    method: str
    params: dict[str, Any]
    status: int
    received_at: float = 0.0  # Unix time the request arrived
    late: bool = False  # answered after the client's timeout (a TIMEOUT fault)
    via_webhook: bool = False  # a method call the webhook answered with, not a request to the API
    content_type: str = ""  # of the request's body, as it came
    body: bytes = b""  # the request's body, as it came (the form's bytes)


class TelegramSimulator:
    """A Bot API server on ``host`` (127.0.0.1) and ``port`` (0: a free one) for one bot, for one test.

    Error injection per chat id, changeable while it runs: ``blocked`` (403 "bot was blocked
    by the user"), ``missing`` (400 "chat not found"), ``throttle_once`` (chat id -> seconds:
    one 429 with ``parameters.retry_after``, then normal). ``latency`` (seconds) delays every
    answer. A wrong token gets 401, an unknown method 404, as from Telegram.
    """

    def __init__(
        self,
        *,
        token: str = "123:ABC",
        username: str = "plp_alert_bot",
        latency: float = 0.0,
        blocked: set[int] | None = None,
        missing: set[int] | None = None,
        throttle_once: dict[int, int] | None = None,
        host: str = HOST,
        port: int = 0,
    ) -> None:
        self.host, self.port = host, port
        self.token = token
        self.username = username
        self.latency = latency
        self.blocked: set[int] = set(blocked or ())
        self.missing: set[int] = set(missing or ())
        self.throttle_once: dict[int, int] = dict(throttle_once or {})
        self.faults: FaultPlan | None = None  # random faults by rate (see tests.simulators.faults)
        self.injected: list[Injected] = []  # every fault acted out, in order
        self.in_flight = 0  # API calls received and not answered yet
        self.received: list[tuple[str, float]] = []  # (chat id, Unix time) of every sendMessage, whatever its answer
        # the same, of the messages that carry an inline keyboard (an alert's "received" button), not answers
        self.received_with_buttons: list[tuple[str, float]] = []
        self.ledger: list[ApiCall] = []
        self.meter: RateMeter | None = None  # the bot's rate, when enforced (sendMessage only)
        self.per_chat: float | None = None  # each chat's rate, when enforced (sendMessage only)
        self.chat_meters: dict[str, RateMeter] = {}
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.base_url = ""
        self.bot_user = {
            "id": int(token.partition(":")[0] or 1),
            "is_bot": True,
            "first_name": "PLP alerts",
            "username": username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self.commands: dict[str | None, list[tuple[str, str]]] = {}  # the bot's menu per language code (setMyCommands)
        self._update_ids = itertools.count(100_000)
        self._query_ids = itertools.count(4_000_000_000_000_000)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], web.Response]] = {
            "getMe": lambda _: _ok(self.bot_user),
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": lambda _: _ok(True),
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "setMyCommands": self._set_my_commands,
        }

    async def __aenter__(self) -> TelegramSimulator:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{port}"
        self._session = ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()  # ends the simulated latency of answers still pending
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def warm_up(self) -> None:
        """One request through every step of the handler (a form read and parsed), answered 404 and left out of
        every ledger: a fresh process's first request takes tens of milliseconds more than the next ones, and a
        rate meter would see the two that follow it arrive together."""
        async with ClientSession() as session:
            url = f"{self.base_url}/bot{self.token}/warmUp"
            async with session.post(url, data={"chat_id": "0", "text": "warm-up"}) as response:
                await response.read()

    def calls(self, method: str) -> list[ApiCall]:
        """The ledger's calls of one method, in order."""
        return [call for call in self.ledger if call.method == method]

    def duplicates(self, *, answers: bool = True) -> Counter[Hashable]:
        """Messages sent more than once to the same chat with the same text, with the count of extras.
        ``answers=False``: only messages with an inline keyboard (alerts), not the bot's answers to members."""
        sent = [c for c in self.calls("sendMessage") if c.status == 200 and (answers or "reply_markup" in c.params)]
        return duplicates((call.params["chat_id"], call.params["text"]) for call in sent)

    # -- members ---------------------------------------------------------------------------------

    async def member_sends(
        self,
        url: str,
        chat_id: int,
        text: str,
        *,
        secret: str | Literal[_Secret.REGISTERED] | None = REGISTERED,
        first_name: str = "Ann",
        language_code: str = "nl",
        by: int | None = None,
    ) -> tuple[int, Any]:
        """Post the update of a member writing ``text`` in their private chat with the bot.

        A text starting with ``/`` (``/start <token>``, ``/stop``) carries its ``bot_command``
        entity. ``secret``: the header's value; ``None`` sends none, ``"wrong"`` a wrong one.
        ``by``: the id of another user writing in that chat, which is then a group.
        Returns the webhook's status and body (parsed JSON, or text).
        """
        user = _member(by or chat_id, first_name, language_code)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": user,
            "chat": _private_chat(chat_id, first_name) if by in (None, chat_id) else _group_chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
        return await self._post_update(url, {"update_id": next(self._update_ids), "message": message}, secret)

    async def member_presses(
        self,
        url: str,
        chat_id: int,
        callback_data: str,
        message_id: int,
        *,
        secret: str | Literal[_Secret.REGISTERED] | None = REGISTERED,
        first_name: str = "Ann",
        language_code: str = "nl",
        by: int | None = None,
    ) -> tuple[int, Any]:
        """Post the update of a member pressing a button carrying ``callback_data`` under message ``message_id``.

        ``secret`` and ``by`` (another user pressing it, in a group) as for ``member_sends``.
        Returns the webhook's status and body.
        """
        message = self._messages.get((chat_id, message_id)) or {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": _private_chat(chat_id, first_name),
            "date": int(time.time()),
            "text": "",
        }
        query = {
            "id": str(next(self._query_ids)),
            "from": _member(by or chat_id, first_name, language_code),
            "message": message,
            "chat_instance": str(-chat_id * 7919),
            "data": callback_data,
        }
        return await self._post_update(url, {"update_id": next(self._update_ids), "callback_query": query}, secret)

    async def _post_update(
        self, url: str, update: dict[str, Any], secret: str | Literal[_Secret.REGISTERED] | None
    ) -> tuple[int, Any]:
        assert self._session is not None, "use the simulator inside `async with`"
        value = self.webhook_secret if secret is REGISTERED else secret
        headers = {SECRET_HEADER: value} if value is not None else {}
        async with self._session.post(url, json=update, headers=headers) as response:
            if response.content_type == "application/json":
                body = await response.json()
                if response.status == 200 and isinstance(body, dict) and "method" in body:
                    self._answer_to_webhook(body)
                return response.status, body
            return response.status, await response.text()

    # -- the Bot API -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received_at = time.time()
        self.in_flight += 1
        try:
            return await self._answer(request, received_at)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, received_at: float) -> web.StreamResponse:
        params = await _params(request) if request.match_info["token"] == self.token else {}
        fault = self._draw_fault(request.match_info["method"], params, received_at)
        if fault is Fault.THROTTLE:  # refused at the door: never processed
            assert self.faults is not None
            seconds = self.faults.retry_after
            return _error(429, f"Too Many Requests: retry after {seconds}", parameters={"retry_after": seconds})
        if request.match_info["method"] == "sendMessage" and not self._within_rate(params, received_at):
            return _error(429, "Too Many Requests: retry after 1", parameters={"retry_after": 1})
        await self._delay()
        if fault is Fault.RESET and request.transport is not None:
            request.transport.close()  # read, then gone: nothing was sent
            return web.Response(status=500)  # never reaches the client
        if fault is Fault.SERVER_ERROR:
            return _error(503, "Service Unavailable")
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        endpoint = self._methods.get(method)
        if endpoint is None:
            return _error(404, "Not Found")
        response = endpoint(params)
        body = await request.read()  # already read for the params: aiohttp keeps it
        late, content_type = fault is Fault.TIMEOUT, request.content_type
        self.ledger.append(
            ApiCall(method, params, response.status, received_at, late=late, content_type=content_type, body=body)
        )
        if fault is Fault.TIMEOUT:
            assert self.faults is not None
            await self._delay(self.faults.hold)  # the message is in the chat; the answer comes too late
        if response.status != 200:  # refused: nothing was taken to fail after
            return response
        if fault is Fault.TAKEN_THEN_RESET and request.transport is not None:
            request.transport.close()  # the message is in the chat; the answer never comes
            return web.Response(status=500)  # never reaches the client
        if fault is Fault.TAKEN_THEN_ERROR:
            return _error(502, "Bad Gateway")  # the message is in the chat all the same
        return response

    def limit(self, *, per_second: float | None, per_chat: float | None = None) -> None:
        """Enforce the Bot API's rates on sendMessage from now on: the bot's, and each chat's (None: none)."""
        self.meter = RateMeter(per_second) if per_second else None
        self.per_chat = per_chat
        self.chat_meters.clear()

    @property
    def refused_for_rate(self) -> int:
        """Messages refused for the bot's or a chat's rate (with a 429, or silently when sent as a webhook's answer)."""
        return (self.meter.refused if self.meter else 0) + sum(m.refused for m in self.chat_meters.values())

    @property
    def refused_by_limit(self) -> dict[str, int]:
        """The refusals of ``refused_for_rate`` by the limit that refused: the bot's rate, or a chat's."""
        return {
            "bot": self.meter.refused if self.meter else 0,
            "chat": sum(m.refused for m in self.chat_meters.values()),
        }

    def _within_rate(self, params: dict[str, Any], arrived: float) -> bool:
        """Whether a message that arrived at ``arrived`` (Unix time, as its request came in: reading and
        parsing it is the simulator's time, not the client's) is within the bot's rate and its chat's."""
        if self.meter is not None and not self.meter.admit(arrived):
            return False
        if self.per_chat is None:
            return True
        chat = str(params.get("chat_id"))
        meter = self.chat_meters.get(chat)
        if meter is None:
            meter = self.chat_meters[chat] = RateMeter(self.per_chat)
        return meter.admit(arrived)

    def _answer_to_webhook(self, answer: dict[str, Any]) -> None:
        """Act on a method call a webhook answered with, as Telegram does: under the same rates, and
        a refused one is dropped without a word (no one is there to be told)."""
        method, params = answer.get("method"), {k: v for k, v in answer.items() if k != "method"}
        endpoint = self._methods.get(str(method))
        if endpoint is None:
            return
        received_at = time.time()
        if method == "sendMessage":
            self.received.append((str(params.get("chat_id")), received_at))
            if not self._within_rate(params, received_at):
                self.ledger.append(ApiCall(str(method), params, 429, received_at, via_webhook=True))
                return
        response = endpoint(params)
        self.ledger.append(ApiCall(str(method), params, response.status, received_at, via_webhook=True))

    def _draw_fault(self, method: str, params: dict[str, Any], received_at: float) -> Fault | None:
        if method != "sendMessage" or "chat_id" not in params:
            return None
        self.received.append((str(params["chat_id"]), received_at))
        if "reply_markup" in params:
            self.received_with_buttons.append(self.received[-1])
        if self.faults is None:
            return None
        key = (params["chat_id"], params.get("text", ""))
        fault = self.faults.draw(key, destination=str(params["chat_id"]))
        if fault is not None:
            self.injected.append(Injected(fault, key, time.time()))
        return fault

    async def _delay(self, seconds: float | None = None) -> None:
        seconds = self.latency if seconds is None else seconds
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            pass

    def _send_message(self, params: dict[str, Any]) -> web.Response:
        chat_id = params["chat_id"]
        if (refusal := self._refusal(chat_id)) is not None:
            return refusal
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user,
            "chat": _private_chat(chat_id, "Ann"),
            "date": int(time.time()),
            "text": params["text"],
        }
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        self._messages[(chat_id, message["message_id"])] = message
        return _ok(message)

    def _edit_message_text(self, params: dict[str, Any]) -> web.Response:
        chat_id, message_id = params["chat_id"], params["message_id"]
        if (refusal := self._refusal(chat_id)) is not None:
            return refusal
        if (chat_id, message_id) not in self._messages:
            return _error(400, "Bad Request: message to edit not found")
        message = {**self._messages[(chat_id, message_id)], "text": params["text"], "edit_date": int(time.time())}
        message.pop("reply_markup", None)  # without a reply_markup, the keyboard goes
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        self._messages[(chat_id, message_id)] = message
        return _ok(message)

    def _set_webhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = params["url"]
        self.webhook_secret = params.get("secret_token")
        return _ok(True, description="Webhook was set")

    def _set_my_commands(self, params: dict[str, Any]) -> web.Response:
        """The bot's menu, per language code (``None``: the default for users of any other language)."""
        commands = params["commands"]
        if not 1 <= len(commands) <= 100 or any(not re.fullmatch(r"[a-z0-9_]{1,32}", c["command"]) for c in commands):
            return _error(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[params.get("language_code") or None] = [(c["command"], c["description"]) for c in commands]
        return _ok(True)

    def _delete_webhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = self.webhook_secret = None
        return _ok(True, description="Webhook was deleted")

    def _refusal(self, chat_id: int) -> web.Response | None:
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.throttle_once:
            seconds = self.throttle_once.pop(chat_id)
            return _error(429, f"Too Many Requests: retry after {seconds}", parameters={"retry_after": seconds})
        return None

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        raw: dict[str, Any] = await request.json()
    elif request.can_read_body:
        raw = dict(await request.post())
    else:
        raw = dict(request.query)
    return {name: _decode(name, value) for name, value in raw.items()}


def _decode(name: str, value: Any) -> Any:
    """A form field as the Bot API reads it: numbers, booleans and objects arrive as text."""
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        return json.loads(value)
    if name in _INT_FIELDS and value.lstrip("-").isdigit():
        return int(value)
    if name in _BOOL_FIELDS:
        return value == "true"
    return value


def _member(chat_id: int, first_name: str, language_code: str) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": language_code}


def _private_chat(chat_id: int, first_name: str) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": first_name}


def _group_chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "group", "title": "Buurt"}


def _ok(result: Any, **extra: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result, **extra})


def _error(status: int, description: str, **extra: Any) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description, **extra}, status=status)
