"""An SMTP server on loopback (aiosmtpd), recording what it receives, with errors on demand.

    async with SmtpSimulator(reject={"gone@example.org": (550, "5.1.1 No such user")}) as smtp:
        settings = Settings(smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none", ...)
        ...
        [mail] = await smtp.wait_for(1)

The server runs in its own thread (``aiosmtpd.controller.Controller``); what it receives
is signalled to the test's event loop with ``call_soon_threadsafe``, so tests wait on
the event itself, never on a sleep.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message as the server took it: the envelope, the parsed e-mail, the raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes  # the DATA as it came over the wire


class SmtpSimulator:
    """A real SMTP server on 127.0.0.1 (a free port), for one test.

    ``reject`` maps a recipient address to the ``(code, text)`` its RCPT gets (550: gone,
    451: try later, 421: and the connection closes); ``stall`` holds addresses whose RCPT
    is never answered (a hung server); ``credentials`` turns on AUTH (PLAIN/LOGIN, no TLS
    needed) with that one ``(username, password)``. All can be changed while it runs.
    """

    def __init__(
        self,
        *,
        reject: dict[str, tuple[int, str]] | None = None,
        stall: set[str] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = HOST
        self.port = 0
        self.reject: dict[str, tuple[int, str]] = dict(reject or {})
        self.stall: set[str] = set(stall or ())
        self.credentials = credentials
        self.messages: list[ReceivedMail] = []
        self.connections_opened = 0
        self.quits = 0  # QUIT commands received: connections the client closed politely
        self._sessions: list[SMTP] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._controller: _Controller | None = None

    async def __aenter__(self) -> SmtpSimulator:
        self._loop = asyncio.get_running_loop()
        auth: dict[str, Any] = {}
        if self.credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = _Controller(_Handler(self), self._opened, hostname=HOST, server_hostname="smtp.test", **auth)
        await asyncio.to_thread(self._controller.start)
        self.port = self._controller.port
        self.connections_opened = self.quits = 0  # the controller's own start-up probe is not a client
        self._sessions.clear()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """The messages received once there are at least ``count``; ``TimeoutError`` after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                if len(self.messages) >= count:
                    return list(self.messages)
                await self._arrived.wait()

    async def drop_connections(self) -> None:
        """Close every client connection from the server side, as a server does with idle sessions."""
        assert self._controller is not None

        async def close_all() -> None:
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.close()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(close_all(), self._controller.loop))

    # -- called in the server's thread ---------------------------------------------------------

    def _opened(self, session: SMTP) -> None:
        self.connections_opened += 1
        self._sessions.append(session)

    def _received(self, mail: ReceivedMail) -> None:
        self.messages.append(mail)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._arrived.set)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        username, password = self.credentials
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (username.encode(), password.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


class _Handler:
    """aiosmtpd's hooks: refuse or stall recipients on demand, record each message, count QUITs."""

    def __init__(self, simulator: SmtpSimulator) -> None:
        self._simulator = simulator

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self._simulator.stall:
            await asyncio.get_running_loop().create_future()  # never answers; cancelled when the server stops
        if address in self._simulator.reject:
            code, text = self._simulator.reject[address]
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._simulator.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # The email package works with \n line ends; on the wire they are \r\n.
        message = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n")))
        self._simulator._received(ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), message, raw))
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """A controller that binds a free port and reports each connection it accepts."""

    def __init__(self, handler: _Handler, on_connection: Any, **kwargs: Any) -> None:
        super().__init__(handler, port=0, **kwargs)
        self._on_connection = on_connection

    def factory(self) -> SMTP:
        session = super().factory()
        self._on_connection(session)
        return session

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server) and self.server.sockets
        self.port = self.server.sockets[0].getsockname()[1]  # the port the OS chose for port=0
        super()._trigger_server()
