"""An SMTP server on loopback (aiosmtpd), recording what it receives, with errors on demand.

    async with SmtpSimulator(reject={"gone@example.org": (550, "5.1.1 No such user")}) as smtp:
        settings = Settings(smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none", ...)
        ...
        [mail] = await smtp.wait_for(1)

Faults at random rates go into ``faults`` (a ``FaultPlan`` keyed by recipient address;
what it did is in ``injected``): a server error is a ``451`` to the RCPT, a reset closes the
connection at the RCPT, a timeout takes the message and answers the DATA ``hold`` seconds
later, a "taken then reset" takes the message and closes the connection instead of replying
to the DATA. ``latency`` delays the answer to each DATA (the message is taken first, as a real
server commits it once the data has come in); ``duplicates()`` counts Message-IDs received
more than once.

The server runs in its own thread (``aiosmtpd.controller.Controller``); what it receives
is signalled to the test's event loop with ``call_soon_threadsafe``, so tests wait on
the event itself, never on a sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.simulators.faults import Fault, FaultPlan, Injected, duplicates

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message as the server took it: the envelope, the parsed e-mail, the raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes  # the DATA as it came over the wire
    received_at: float = 0.0  # Unix time the DATA came in
    late: bool = False  # taken, but answered after the client's timeout (a TIMEOUT fault)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")


class SmtpSimulator:
    """A real SMTP server on ``host`` (127.0.0.1) and ``port`` (0: a free one), for one test.

    ``reject`` maps a recipient address to the ``(code, text)`` its RCPT gets (550: gone,
    451: try later, 421: and the connection closes); ``reject_data`` to the reply its message's
    DATA gets once the data is in (the server refuses the message: it is not kept); ``stall``
    holds addresses whose RCPT is never answered (a hung server); ``credentials`` turns on AUTH
    (PLAIN/LOGIN, no TLS needed) with that one ``(username, password)``. All can be changed
    while it runs. ``eight_bit=False``: a server that does not offer ``8BITMIME`` (7-bit data only).
    """

    def __init__(
        self,
        *,
        reject: dict[str, tuple[int, str]] | None = None,
        stall: set[str] | None = None,
        credentials: tuple[str, str] | None = None,
        host: str = HOST,
        port: int = 0,
        eight_bit: bool = True,
    ) -> None:
        self.host = host
        self.eight_bit = eight_bit
        self.port = port
        self.reject: dict[str, tuple[int, str]] = dict(reject or {})
        self.reject_data: dict[str, tuple[int, str]] = {}
        self.stall: set[str] = set(stall or ())
        self.credentials = credentials
        self.latency = 0.0  # seconds before answering each DATA, once the message is taken
        self.faults: FaultPlan | None = None  # random faults by rate (see tests.simulators.faults)
        self.injected: list[Injected] = []  # every fault acted out, in order
        self.in_flight = 0  # messages taken and not answered yet
        self.received: list[tuple[str, float]] = []  # (recipient, Unix time) of every RCPT, whatever its answer
        self.ehlo_names: list[str] = []  # the name each client gave in EHLO, as it came on the wire
        self.messages: list[ReceivedMail] = []
        self.connections_opened = 0
        self.quits = 0  # QUIT commands received: connections the client closed politely
        self._sessions: list[SMTP] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._controller: _Controller | None = None

    async def __aenter__(self) -> SmtpSimulator:
        self._loop = asyncio.get_running_loop()
        auth: dict[str, Any] = {"decode_data": not self.eight_bit}  # aiosmtpd offers 8BITMIME unless it decodes
        if self.credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = _Controller(
            _Handler(self), self._opened, port=self.port, hostname=self.host, server_hostname="smtp.test", **auth
        )
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

    def duplicates(self) -> Counter[Hashable]:
        """Message-IDs received more than once, with the count of extras."""
        return duplicates(mail.message_id for mail in self.messages)

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

    def _draw_fault(self, address: str) -> Fault | None:
        if self.faults is None:
            return None
        kinds = (Fault.SERVER_ERROR, Fault.TIMEOUT, Fault.RESET, Fault.TAKEN_THEN_RESET)
        fault = self.faults.draw(address, destination=address, kinds=kinds)
        if fault is not None:
            self.injected.append(Injected(fault, address, time.time()))
        return fault

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

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self._simulator.ehlo_names.append(hostname)
        session.host_name = hostname  # what aiosmtpd does itself when no hook takes EHLO
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        self._simulator.received.append((address, time.time()))
        if address in self._simulator.stall:
            await asyncio.get_running_loop().create_future()  # never answers; cancelled when the server stops
        if address in self._simulator.reject:
            code, text = self._simulator.reject[address]
            return f"{code} {text}"
        fault = self._simulator._draw_fault(address)
        if fault is Fault.SERVER_ERROR:
            return "451 4.3.0 Temporary server error, try again later"
        if fault is Fault.RESET and server.transport is not None:
            server.transport.close()  # gone before the message: nothing was taken
            return "421 4.4.2 Connection reset"  # never reaches the client
        envelope.late = fault is Fault.TIMEOUT  # type: ignore[attr-defined]
        envelope.cut = fault is Fault.TAKEN_THEN_RESET  # type: ignore[attr-defined]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._simulator.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received_at, late = time.time(), bool(getattr(envelope, "late", False))
        refused = [self._simulator.reject_data[r] for r in envelope.rcpt_tos if r in self._simulator.reject_data]
        if refused:
            code, text = refused[0]
            return f"{code} {text}"
        raw = envelope.original_content or b""
        # The email package works with \n line ends; on the wire they are \r\n.
        message = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n")))
        simulator = self._simulator
        simulator._received(
            ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), message, raw, received_at, late)
        )
        if getattr(envelope, "cut", False) and server.transport is not None:
            server.transport.close()  # taken, and gone before the reply
            return "451 4.4.2 Connection reset"  # never reaches the client
        hold = simulator.latency + (simulator.faults.hold if late and simulator.faults else 0.0)
        if hold > 0:
            simulator.in_flight += 1
            try:
                await asyncio.sleep(hold)  # the simulated server's own slowness
            finally:
                simulator.in_flight -= 1
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """A controller that binds its port (0: a free one) and reports each connection it accepts."""

    def __init__(self, handler: _Handler, on_connection: Any, *, port: int, **kwargs: Any) -> None:
        super().__init__(handler, port=port, **kwargs)
        self._on_connection = on_connection

    def factory(self) -> SMTP:
        session = super().factory()
        self._on_connection(session)
        return session

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server) and self.server.sockets
        self.port = self.server.sockets[0].getsockname()[1]  # the port the OS chose for port=0
        super()._trigger_server()
