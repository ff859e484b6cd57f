"""The e-mail channel: aiosmtplib against a real SMTP server on loopback (tests/simulators/smtp.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from email.header import decode_header, make_header
from email.message import EmailMessage

import aiosmtplib
import pytest
from pydantic import SecretStr, ValidationError
from structlog.testing import capture_logs

from channels.base import (
    ChannelError,
    NotConfigured,
    OutboundMessage,
    PermanentError,
    Receipt,
    ReceiptStatus,
    TransientError,
)
from channels.email import MAIL_POLICY, SmtpChannel, translate
from config import Settings, SmtpSecurity
from dispatcher.core.links import Links
from dispatcher.core.models import Category, ChannelName, Language, Urgency
from dispatcher.core.wording import subject as subject_line
from dispatcher.storage.store import new_id
from tests.simulators.faults import Fault, FaultPlan
from tests.simulators.smtp import SmtpSimulator
from tests.support import free_port

SENDER = "PLP Flagey <alerts@plp.example>"
ANN = "ann.peeters@example.org"
PASSWORD = "s3cret-smtp-pass"


def message(
    *,
    address: str = ANN,
    n: int = 1,
    language: Language = Language.NL,
    subject: str = "[PLP Flagey] DRINGEND: inbraak",
    text: str = "Inbraak in de Baljuwstraat",
    html: str | None = None,
    reply_to: tuple[str, ...] = (),
    unsubscribe_url: str | None = None,
) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"a1:email:m{n}",
        alert_id="a1",
        member_id=f"m{n}",
        channel=ChannelName.EMAIL,
        address=address,
        language=language,
        urgency=Urgency.URGENT,
        subject=subject,
        text=text,
        html=html,
        reply_to=reply_to,
        unsubscribe_url=unsubscribe_url,
    )


def settings_for(
    smtp: SmtpSimulator,
    *,
    pool_size: int = 4,
    timeout: float = 2.0,
    username: str | None = None,
    password: str | None = None,
) -> Settings:
    return Settings(
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_security=SmtpSecurity.NONE,
        smtp_from=SENDER,
        smtp_pool_size=pool_size,
        provider_timeout=timeout,
        smtp_username=username,
        smtp_password=SecretStr(password) if password else None,
    )


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSimulator]:
    async with SmtpSimulator() as simulator:
        yield simulator


@pytest.fixture
async def email(smtp: SmtpSimulator) -> AsyncIterator[SmtpChannel]:
    channel = SmtpChannel.from_settings(settings_for(smtp))
    yield channel
    await channel.close()


@pytest.mark.parametrize(
    ("host", "sender", "expected"),
    [("smtp.example.org", SENDER, True), ("smtp.example.org", None, False), (None, SENDER, False), (None, None, False)],
)
def test_configured_needs_a_host_and_a_sender(host: str | None, sender: str | None, expected: bool) -> None:
    """The channel counts as configured only with both a mail server and a sender."""
    assert SmtpChannel.configured(Settings(smtp_host=host, smtp_from=sender)) is expected


def test_a_sender_without_an_address_is_not_configured() -> None:
    """A sender setting with no e-mail address in it is refused when the channel is built."""
    with pytest.raises(NotConfigured):
        SmtpChannel.from_settings(Settings(smtp_host="smtp.example.org", smtp_from="PLP alerts"))


async def test_send_returns_the_message_id_as_a_sent_receipt(email: SmtpChannel) -> None:
    """A message the server accepted gives a SENT receipt whose id is the e-mail's Message-ID."""
    receipt = await email.send(message())
    assert receipt == Receipt(provider_id="<a1.email.m1@plp.example>", status=ReceiptStatus.SENT)


async def test_the_email_carries_every_header(email: SmtpChannel, smtp: SmtpSimulator) -> None:
    """From, To, Subject, Message-ID, Date, Reply-To, one-click unsubscribe and Content-Language are set."""
    await email.send(
        message(reply_to=("coord@plp.example", "zone@police.example"), unsubscribe_url="https://plp.example/u/tok")
    )
    [mail] = await smtp.wait_for(1)
    assert (mail.mail_from, mail.rcpt_tos) == ("alerts@plp.example", (ANN,))
    headers = mail.message
    assert headers["From"] == SENDER
    assert headers["To"] == ANN
    assert headers["Subject"] == "[PLP Flagey] DRINGEND: inbraak"
    assert headers["Message-ID"] == "<a1.email.m1@plp.example>"
    assert headers["Date"] is not None
    assert headers["Reply-To"] == "coord@plp.example, zone@police.example"
    assert headers["List-Unsubscribe"] == "<https://plp.example/u/tok>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Content-Language"] == "nl"


async def test_optional_headers_are_left_out(email: SmtpChannel, smtp: SmtpSimulator) -> None:
    """Without reply-to, unsubscribe link or HTML, the e-mail is a single text part with none of those headers."""
    await email.send(message())
    [mail] = await smtp.wait_for(1)
    assert mail.message["Reply-To"] is None
    assert mail.message["List-Unsubscribe"] is None
    assert mail.message["List-Unsubscribe-Post"] is None
    assert mail.message.get_content_type() == "text/plain"
    assert mail.message.get_content() == "Inbraak in de Baljuwstraat\n"


@pytest.mark.parametrize(
    ("language", "subject", "text"),
    [
        (Language.FR, "[PLP Ixelles] URGENT : cambriolage à l'Étang", "Été : un véhicule suspect, rue de l'Église."),
        (
            Language.NL,
            "[BIN Gent] Café ‘De Vrede’ — inbraak",
            "Verdachte persoon gezien aan de Sint-Pietersplein, ë ï.",
        ),
        (Language.DE, "[KPV Eupen] Einbruch in der Schulstraße", "Verdächtige Person, Größe etwa 1,80 m, grüne Jacke."),
    ],
)
async def test_text_and_html_alternatives_keep_accents(
    email: SmtpChannel, smtp: SmtpSimulator, language: Language, subject: str, text: str
) -> None:
    """The e-mail has a text part and an HTML alternative; accented French, Dutch and German arrive intact."""
    html = f"<p>{text}</p>"
    await email.send(message(language=language, subject=subject, text=text, html=html))
    [mail] = await smtp.wait_for(1)
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.message["Subject"] == subject
    assert mail.message["Content-Language"] == language.value
    plain, rich = mail.message.get_body(("plain",)), mail.message.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content() == text + "\n"
    assert rich.get_content() == html + "\n"


def test_message_id_is_the_same_on_every_attempt() -> None:
    """The Message-ID follows from the delivery id and the sender's domain, so a retry carries the same one."""
    settings = Settings(smtp_host="smtp.example.org", smtp_from=SENDER)
    first, second = SmtpChannel.from_settings(settings), SmtpChannel.from_settings(settings)
    assert first.message_id("a1:email:m7") == second.message_id("a1:email:m7") == "<a1.email.m7@plp.example>"


async def test_sequential_sends_reuse_one_connection(email: SmtpChannel, smtp: SmtpSimulator) -> None:
    """Messages sent one after another travel over the same connection."""
    for n in range(3):
        await email.send(message(n=n))
    await smtp.wait_for(3)
    assert smtp.connections_opened == 1


async def test_concurrent_sends_share_the_pool(smtp: SmtpSimulator) -> None:
    """Twenty e-mails sent at once through a pool of four use at most four connections."""
    channel = SmtpChannel.from_settings(settings_for(smtp, pool_size=4))
    receipts = await asyncio.gather(*(channel.send(message(n=n)) for n in range(20)))
    await channel.close()
    assert len({r.provider_id for r in receipts}) == 20
    assert len(await smtp.wait_for(20)) == 20
    assert 1 <= smtp.connections_opened <= 4


@pytest.mark.parametrize(
    ("public_base_url", "configured", "said"),
    [
        ("https://alertes.plp-uccle.be", None, "alertes.plp-uccle.be"),
        ("http://127.0.0.1:8080", None, "[127.0.0.1]"),
        ("http://[::1]:8080", None, "[IPv6:::1]"),
        ("https://alertes.plp-uccle.be", "mx-out.zone5340.be", "mx-out.zone5340.be"),
    ],
)
async def test_the_relay_hears_the_services_own_name_in_ehlo_without_a_dns_lookup(
    smtp: SmtpSimulator, public_base_url: str, configured: str | None, said: str
) -> None:
    """The EHLO name is ``SMTP_EHLO_NAME``, else the public base URL's host (an address in brackets, RFC 5321):
    known from the settings, so no connection waits for the resolver (aiosmtplib's default asks it, in a thread,
    on every connect)."""
    settings = settings_for(smtp).model_copy(update={"public_base_url": public_base_url, "smtp_ehlo_name": configured})
    channel = SmtpChannel.from_settings(settings)
    await asyncio.gather(*(channel.send(message(n=n)) for n in range(3)))
    await channel.close()
    assert smtp.ehlo_names and set(smtp.ehlo_names) == {said}


@pytest.mark.parametrize("name", ["bad name", "-x.example", "x.example-", "[not-an-address]", "é.example"])
def test_an_ehlo_name_that_is_no_domain_or_address_literal_is_refused_naming_the_setting(name: str) -> None:
    """A name a relay would refuse in EHLO is a configuration error, named, at start-up."""
    with pytest.raises(ValidationError, match="SMTP_EHLO_NAME"):
        Settings(SMTP_EHLO_NAME=name)


async def test_a_connection_the_server_closed_is_opened_again(smtp: SmtpSimulator) -> None:
    """When the server has dropped a pooled connection, the next send opens a new one and goes through."""
    channel = SmtpChannel(host=smtp.host, port=smtp.port, security=SmtpSecurity.NONE, sender=SENDER, probe_idle_after=0)
    await channel.send(message(n=1))
    await smtp.drop_connections()
    await channel.send(message(n=2))
    await channel.close()
    assert len(await smtp.wait_for(2)) == 2
    assert smtp.connections_opened == 2


@pytest.mark.parametrize(
    ("code", "error", "reason"),
    [
        (550, PermanentError, "address refused by the mail server: 550"),
        (553, PermanentError, "address refused by the mail server: 553"),
        (451, TransientError, "address refused by the mail server: 451"),
        (452, TransientError, "address refused by the mail server: 452"),
    ],
)
async def test_a_refused_recipient_says_whose_fault(
    email: SmtpChannel, smtp: SmtpSimulator, code: int, error: type[Exception], reason: str
) -> None:
    """A 5xx refusal of the address is permanent, a 4xx one transient; the original error is the cause."""
    smtp.reject["gone@example.org"] = (code, "refused")
    with pytest.raises(error, match=reason) as caught:
        await email.send(message(address="gone@example.org"))
    assert isinstance(caught.value.__cause__, aiosmtplib.SMTPException)


async def test_a_refused_recipient_leaves_the_connection_usable(email: SmtpChannel, smtp: SmtpSimulator) -> None:
    """After a refused address, the next message goes over the same connection."""
    smtp.reject["gone@example.org"] = (550, "5.1.1 No such user")
    with pytest.raises(PermanentError):
        await email.send(message(address="gone@example.org"))
    await email.send(message(n=2))
    await smtp.wait_for(1)
    assert smtp.connections_opened == 1


async def test_421_closes_the_connection(email: SmtpChannel, smtp: SmtpSimulator) -> None:
    """A 421 is transient and ends the session; the next send opens a new connection."""
    smtp.reject["busy@example.org"] = (421, "4.3.2 Service shutting down")
    with pytest.raises(TransientError):
        await email.send(message(address="busy@example.org"))
    await email.send(message(n=2))
    await smtp.wait_for(1)
    assert smtp.connections_opened == 2


async def test_a_server_that_is_down_is_transient() -> None:
    """Nothing listening on the mail server's port is a transient failure, after which nothing was sent."""
    channel = SmtpChannel(host="127.0.0.1", port=free_port(), security=SmtpSecurity.NONE, sender=SENDER, timeout=2)
    with pytest.raises(TransientError, match="unreachable") as raised:
        await channel.send(message())
    await channel.close()
    assert raised.value.may_have_sent is False


def _faults(fault: Fault) -> Callable[[SmtpSimulator], None]:
    def inject(smtp: SmtpSimulator) -> None:
        smtp.faults = FaultPlan(seed=1, rates={fault: 1.0}, hold=1.0)

    return inject


#: What the mail server does to the message -> whether the channel says it may have gone. Before the end
#: of the data the server cannot have it, and a reply to the data is its word; after, silence is doubt.
PHASES = [
    pytest.param(lambda smtp: smtp.reject.update({ANN: (451, "4.3.0 Try later")}), False, id="451-to-the-rcpt"),
    pytest.param(_faults(Fault.RESET), False, id="closed-at-the-rcpt"),
    pytest.param(lambda smtp: smtp.stall.add(ANN), False, id="no-answer-to-the-rcpt"),
    pytest.param(lambda smtp: smtp.reject_data.update({ANN: (451, "4.3.0 Queue full")}), False, id="451-to-the-data"),
    pytest.param(lambda smtp: smtp.reject_data.update({ANN: (554, "5.7.1 Refused")}), False, id="554-to-the-data"),
    pytest.param(_faults(Fault.TAKEN_THEN_RESET), True, id="closed-after-the-data"),
    pytest.param(_faults(Fault.TIMEOUT), True, id="no-answer-to-the-data-in-time"),
]


@pytest.mark.parametrize(("fault", "may_have_sent"), PHASES)
async def test_a_failed_message_may_have_gone_only_once_its_data_went_out(
    smtp: SmtpSimulator, fault: Callable[[SmtpSimulator], None], may_have_sent: bool
) -> None:
    """The channel says a failed message may have gone exactly when the server has it: the connection lost
    or the reply missing after the data went out; never at the envelope, nor when the server refused the data."""
    channel = SmtpChannel.from_settings(settings_for(smtp, timeout=0.3, pool_size=1))
    fault(smtp)
    with pytest.raises(ChannelError) as raised:
        await channel.send(message())
    await channel.close()
    assert isinstance(raised.value, TransientError | PermanentError)
    assert getattr(raised.value, "may_have_sent", False) is may_have_sent
    assert [m.message_id for m in smtp.messages] == ["<a1.email.m1@plp.example>"] * may_have_sent


async def test_a_hung_server_is_transient_after_the_provider_timeout(smtp: SmtpSimulator) -> None:
    """A server that stops answering fails the send as transient once the provider timeout is over."""
    channel = SmtpChannel.from_settings(settings_for(smtp, timeout=0.3, pool_size=1))
    smtp.stall.add("slow@example.org")
    started = time.monotonic()
    with pytest.raises(TransientError, match="in time"):
        await channel.send(message(address="slow@example.org"))
    assert time.monotonic() - started < 2
    await channel.send(message(n=2))  # the pool's only connection was given back, and reopened
    await channel.close()
    assert [m.rcpt_tos for m in await smtp.wait_for(1)] == [(ANN,)]


async def test_login_with_the_configured_credentials() -> None:
    """With a username and password, the channel logs in and sends."""
    async with SmtpSimulator(credentials=("plp", PASSWORD)) as smtp:
        channel = SmtpChannel.from_settings(settings_for(smtp, username="plp", password=PASSWORD))
        await channel.send(message())
        await channel.close()
        assert len(await smtp.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("server_credentials", "match"),
    [
        (("plp", "another-password"), "refused the login: 535"),
        (None, "does not fit the settings"),  # the server offers no AUTH at all
    ],
)
async def test_a_refused_login_is_not_configured(server_credentials: tuple[str, str] | None, match: str) -> None:
    """A wrong password, or a server without AUTH while the settings hold credentials, is a configuration problem."""
    async with SmtpSimulator(credentials=server_credentials) as smtp:
        channel = SmtpChannel.from_settings(settings_for(smtp, username="plp", password=PASSWORD))
        with pytest.raises(NotConfigured, match=match) as caught:
            await channel.send(message())
        await channel.close()
    assert PASSWORD not in str(caught.value)


async def test_the_password_never_shows() -> None:
    """Neither the channel's repr nor its log events show the password."""
    async with SmtpSimulator(credentials=("plp", PASSWORD)) as smtp:
        channel = SmtpChannel.from_settings(settings_for(smtp, username="plp", password=PASSWORD))
        with capture_logs() as events:
            await channel.send(message())
        await channel.close()
    expected = f"SmtpChannel(host='127.0.0.1', port={smtp.port}, security='none', username='plp', pool_size=4)"
    assert repr(channel) == expected
    assert [e["event"] for e in events] == ["email.connected"]
    assert PASSWORD not in repr(events)


async def test_close_quits_every_connection(smtp: SmtpSimulator) -> None:
    """Closing the channel says QUIT on each connection it opened."""
    channel = SmtpChannel.from_settings(settings_for(smtp, pool_size=3))
    await asyncio.gather(*(channel.send(message(n=n)) for n in range(6)))
    await channel.close()
    assert smtp.quits == smtp.connections_opened >= 1


@pytest.mark.parametrize(
    ("error", "expected", "reason"),
    [
        (aiosmtplib.SMTPSenderRefused(550, "not allowed", "alerts@plp.example"), NotConfigured, "sender address: 550"),
        (aiosmtplib.SMTPSenderRefused(451, "later", "alerts@plp.example"), TransientError, "refused"),
        (aiosmtplib.SMTPDataError(554, "spam"), PermanentError, "message refused by the mail server: 554"),
        (aiosmtplib.SMTPDataError(452, "full"), TransientError, "message refused by the mail server: 452"),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientError, "unreachable"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientError, "in time"),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), PermanentError, "SMTPUTF8"),
        (aiosmtplib.SMTPNotSupported("STARTTLS extension not supported"), NotConfigured, "STARTTLS"),
        (ValueError("bad address"), PermanentError, "cannot be used"),
    ],
)
def test_translate_says_whose_fault(error: Exception, expected: type[Exception], reason: str) -> None:
    """Each kind of SMTP failure maps to the channel error that says whose fault it is."""
    translated = translate(error)
    assert type(translated) is expected
    assert reason in str(translated)


# -- headers on the wire -----------------------------------------------------------------------

#: Where members' links point in production: a real host name, and a real signed token.
PUBLIC_URL = "https://alertes.plp-bruxelles-capitale-ixelles.be"
ENCODED_WORD = re.compile(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=")


def real_unsubscribe_url() -> str:
    """An unsubscribe link exactly as the service makes it (about 130 characters)."""
    links = Links(Settings(public_base_url=PUBLIC_URL, secret_key=SecretStr("k" * 64)))
    return links.unsubscribe_url(new_id())


def wire_headers(raw: bytes) -> list[tuple[str, bytes]]:
    """The header fields of a raw message, each as its name and its value with the folds kept."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    fields: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name.decode("ascii"), value.removeprefix(b" ")))
    return fields


def wire_value(raw: bytes, name: str) -> bytes:
    [value] = [v for n, v in wire_headers(raw) if n.lower() == name.lower()]
    return value


def decoded(value: bytes) -> str:
    """A header value unfolded and decoded as a mail client does (RFC 2047)."""
    return str(make_header(decode_header(re.sub(rb"\r\n[ \t]", b" ", value).decode("ascii"))))


async def test_one_click_unsubscribe_goes_on_the_wire_as_a_plain_url(smtp: SmtpSimulator) -> None:
    """A real-length unsubscribe link arrives as ``List-Unsubscribe: <url>`` on one line, never encoded."""
    url = real_unsubscribe_url()
    assert len(url) > 78  # longer than the e-mail package's folding width
    channel = SmtpChannel.from_settings(settings_for(smtp))
    await channel.send(message(unsubscribe_url=url))
    await channel.close()
    [mail] = await smtp.wait_for(1)
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode("ascii") in mail.raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in mail.raw
    assert mail.message["List-Unsubscribe"] == f"<{url}>"


HEADER_CASES = [
    pytest.param(
        Language.FR,
        "[PLP Saint-Gilles – Parvis]",
        '"Zone de police Bruxelles-Capitale/Ixelles (5339) – Cellule prévention, PLP" <alertes@plp-ixelles.be>',
        "Zone de police Bruxelles-Capitale/Ixelles (5339) – Cellule prévention, PLP",
        id="fr",
    ),
    pytest.param(
        Language.NL,
        "[BIN Sint-Lambrechts-Woluwe – Kapelleveld/Roodebeek]",
        "Politiezone Montgomery – Buurtinformatienetwerken <bin@politie-montgomery.be>",
        "Politiezone Montgomery – Buurtinformatienetwerken",
        id="nl",
    ),
    pytest.param(
        Language.DE,
        "[KPV Eupen-Unterstadt Kirchstraße/Gospertstraße]",
        "Polizeizone Weser-Göhl – Kriminalprävention Ostbelgien <kpv@pz-wesergoehl.be>",
        "Polizeizone Weser-Göhl – Kriminalprävention Ostbelgien",
        id="de",
    ),
    pytest.param(
        Language.EN,
        "[PLP Flagey]",
        "PLP Flagey <alerts@plp.example>",
        "PLP Flagey",
        id="en",
    ),
]


@pytest.mark.parametrize(("language", "plp_name", "sender", "display_name"), HEADER_CASES)
async def test_every_header_is_encoded_only_where_it_must_be(
    smtp: SmtpSimulator, language: Language, plp_name: str, sender: str, display_name: str
) -> None:
    """On the raw bytes: accented display names and subjects are RFC 2047 encoded-words that decode to the
    original; addresses, Message-ID and URLs stay plain; no line is over 78 characters but the unfoldable ones,
    and none over 998."""
    category = Category.SUSPECT_VEHICLE
    subject = subject_line(plp_name=plp_name, urgency=Urgency.URGENT, category=category, language=language)
    url = real_unsubscribe_url()
    reply_to = ("coordination.saint-gilles-parvis@plp-ixelles.be", "zone-5339-prevention@police.example")
    settings = settings_for(smtp).model_copy(update={"smtp_from": sender})
    channel = SmtpChannel.from_settings(settings)
    outbound = message(language=language, subject=subject, reply_to=reply_to, unsubscribe_url=url)
    await channel.send(outbound)
    await channel.close()
    [mail] = await smtp.wait_for(1)
    head = mail.raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # every header is 7-bit: no server needs SMTPUTF8 for it
    address = sender.rpartition("<")[2].rstrip(">")
    plain = {
        "Message-ID": channel.message_id(outbound.delivery_id).encode("ascii"),
        "List-Unsubscribe": f"<{url}>".encode("ascii"),
        "List-Unsubscribe-Post": b"List-Unsubscribe=One-Click",
        "To": ANN.encode("ascii"),
        "Content-Language": language.value.encode("ascii"),
    }
    assert {name: wire_value(mail.raw, name) for name in plain} == plain
    assert decoded(wire_value(mail.raw, "Subject")) == subject
    assert decoded(wire_value(mail.raw, "From")) == f"{display_name} <{address}>"
    assert wire_value(mail.raw, "From").endswith(f"<{address}>".encode("ascii"))  # the address itself is never encoded
    assert decoded(wire_value(mail.raw, "Reply-To")) == ", ".join(reply_to)
    for name, value in wire_headers(mail.raw):
        assert all(len(word) <= 75 for word in ENCODED_WORD.findall(value)), name  # RFC 2047 section 2
        width = 998 if name in ("Message-ID", "List-Unsubscribe") else 78
        assert all(len(line) <= width for line in (f"{name}: ".encode("ascii") + value).split(b"\r\n")), name
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("<https://plp.example/u/tok>", b"List-Unsubscribe: <https://plp.example/u/tok>\r\n"),
        (
            "<mailto:unsubscribe@plp.example?subject=unsubscribe>, <https://alertes.plp.example/v1/u/" + "t" * 60 + ">",
            b"List-Unsubscribe: <mailto:unsubscribe@plp.example?subject=unsubscribe>,\r\n"
            b" <https://alertes.plp.example/v1/u/" + b"t" * 60 + b">\r\n",
        ),
    ],
)
def test_a_url_list_header_is_folded_only_between_its_urls(value: str, wire: bytes) -> None:
    """Several URLs in one list header fold between them, at the comma; a URL is never cut or encoded."""
    mail = message_with("List-Unsubscribe", value)
    assert mail.as_bytes(policy=MAIL_POLICY.clone(linesep="\r\n")).split(b"\r\n\r\n")[0] + b"\r\n" == wire


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("https://plp.example/u/tok", id="no-angle-brackets"),
        pytest.param("<https://plp.example/u/tök>", id="not-ascii"),
        pytest.param("<https://plp.example/u/a b>", id="space-in-url"),
        pytest.param("<https://plp.example/u/" + "t" * 1000 + ">", id="longer-than-a-line"),
    ],
)
def test_a_url_list_header_refuses_what_would_break_on_the_wire(value: str) -> None:
    """A value that is not ASCII URLs in angle brackets, or cannot fit a header line, is refused when set."""
    with pytest.raises(ValueError, match="URL"):
        message_with("List-Unsubscribe", value)


def message_with(name: str, value: str) -> EmailMessage:
    mail = EmailMessage(policy=MAIL_POLICY)
    mail[name] = value
    return mail


@pytest.mark.parametrize(
    ("error", "data_started", "may_have_sent"),
    [
        (aiosmtplib.SMTPServerDisconnected("gone"), False, False),
        (aiosmtplib.SMTPReadTimeoutError("slow"), False, False),
        (TimeoutError(), False, False),  # the channel's own bound on the call
        (aiosmtplib.SMTPServerDisconnected("gone"), True, True),
        (aiosmtplib.SMTPReadTimeoutError("slow"), True, True),
        (TimeoutError(), True, True),
        (aiosmtplib.SMTPDataError(451, "later"), True, False),  # the server's word on the data
    ],
)
def test_translate_says_a_message_may_have_gone_only_from_its_data_on(
    error: Exception, data_started: bool, may_have_sent: bool
) -> None:
    """A lost connection or a missing reply leaves the message in doubt once its DATA had started, not before."""
    translated = translate(error, data_started=data_started)
    assert isinstance(translated, TransientError) and translated.may_have_sent is may_have_sent
