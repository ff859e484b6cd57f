"""The Twilio channels, driven by the real twilio library against the Twilio simulator on loopback."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from channels.base import (
    CallScript,
    ChannelError,
    NotConfigured,
    OutboundMessage,
    PermanentError,
    RateLimited,
    Receipt,
    ReceiptStatus,
    TransientError,
    VendorChannel,
)
from channels.inbound import FAX, VOICEMAIL, StatusReport, WebhookRequest
from channels.twilio import TwilioAccount, TwilioInbound, TwilioSmsChannel, TwilioVoiceChannel
from channels.twilio.inbound import RETRIES, STATUS
from config import Settings
from dispatcher.core.models import ChannelName, DeliveryStatus, Language, Urgency
from tests.simulators.faults import Fault, FaultPlan
from tests.simulators.twilio import Failure, TwilioSimulator
from tests.support import free_port, unconnectable_port

ACCOUNT = "AC" + "0" * 32
TOKEN = "tok-" + "5e" * 14
SENDERS = ("+3225550001", "+3225550002", "+3225550003")
CALLER = "+3225550009"
MEMBER = "+32470123456"
SCRIPT = CallScript(
    intro="Bericht van uw buurtinformatienetwerk.",
    text="Inbraak in de Baljuwstraat & <co>",
    prompt="Druk op 1 om de ontvangst te bevestigen.",
    goodbye="Tot ziens.",
)
#: The TwiML of ``SCRIPT``'s call, byte for byte, with its keys' URL for delivery ``a1:voice:m1``.
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="https://plp.example/v1/webhooks/twilio/voice'
    '?d=a1:voice:m1#rc=5&amp;rp=all" method="POST" numDigits="1" timeout="8"><Say language="nl-BE" '
    'voice="Polly.Lisa-Neural">Bericht van uw buurtinformatienetwerk. Inbraak in de Baljuwstraat &amp; &lt;co&gt;'
    '</Say><Pause length="1" /><Say language="nl-BE" voice="Polly.Lisa-Neural">Inbraak in de Baljuwstraat &amp; '
    '&lt;co&gt;</Say><Say language="nl-BE" voice="Polly.Lisa-Neural">Druk op 1 om de ontvangst te bevestigen.</Say>'
    '</Gather><Say language="nl-BE" voice="Polly.Lisa-Neural">Tot ziens.</Say></Response>'
)
PUBLIC = "https://plp.example"


def twilio_settings(base_url: str, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "public_base_url": PUBLIC,
        "twilio_account_sid": ACCOUNT,
        "twilio_auth_token": TOKEN,
        "twilio_api_base_url": base_url,
        "twilio_sms_from": SENDERS[:1],
        "twilio_voice_from": CALLER,
        "provider_timeout": 2.0,
    }
    return Settings(**(fields | overrides))


def message(*, channel: ChannelName = ChannelName.SMS, to: str = MEMBER, n: int = 1) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"a1:{channel.value}:m{n}",
        alert_id="a1",
        member_id=f"m{n}",
        channel=channel,
        address=to,
        language=Language.NL,
        urgency=Urgency.URGENT,
        subject="[PLP Flagey] DRINGEND: inbraak",
        text="Inbraak in de Baljuwstraat",
        call=SCRIPT if channel is ChannelName.VOICE else None,
    )


@dataclass(frozen=True)
class Webhook:
    hook: str
    params: dict[str, str]
    signed: bool  # RequestValidator accepted the X-Twilio-Signature


@dataclass
class Receiver:
    """The application's side of the webhooks: takes them on loopback and checks each signature."""

    webhooks: list[Webhook] = field(default_factory=list)
    base_url: str = ""

    def url(self, hook: str) -> str:
        return f"{self.base_url}/v1/webhooks/twilio/{hook}"

    def statuses(self, key: str = "MessageStatus") -> list[str]:
        return [w.params[key] for w in self.webhooks]

    async def take(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {name: str(value) for name, value in form.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        urls = (str(request.url), str(request.url) + RETRIES)  # Twilio signs our fragment, never sent
        signed = any(RequestValidator(TOKEN).validate(url, params, signature) for url in urls)
        self.webhooks.append(Webhook(request.match_info["hook"], params, signed))
        return web.Response(status=204 if signed else 403)


@pytest.fixture
async def sim() -> AsyncIterator[TwilioSimulator]:
    async with TwilioSimulator(account_sid=ACCOUNT, auth_token=TOKEN, callbacks=False) as simulator:
        yield simulator


Build = Callable[..., Any]


@pytest.fixture
async def build(sim: TwilioSimulator) -> AsyncIterator[Build]:
    """Builds channels from settings pointing at the simulator (with overrides), closed after the test."""
    built: list[TwilioSmsChannel | TwilioVoiceChannel] = []

    def channel(
        cls: type[TwilioSmsChannel | TwilioVoiceChannel] = TwilioSmsChannel,
        base_url: str | None = None,
        **overrides: Any,
    ) -> Any:
        built.append(cls.from_settings(twilio_settings(base_url or sim.base_url, **overrides)))
        return built[-1]

    yield channel
    for opened in built:
        await opened.close()


@pytest.fixture
def sms(build: Build) -> TwilioSmsChannel:
    channel: TwilioSmsChannel = build(twilio_sms_from=SENDERS)
    return channel


@pytest.fixture
def voice(build: Build) -> TwilioVoiceChannel:
    channel: TwilioVoiceChannel = build(TwilioVoiceChannel)
    return channel


@pytest.fixture
async def receiver(sim: TwilioSimulator) -> AsyncIterator[Receiver]:
    """The application's side, on loopback; the simulator calls back once it is there."""
    taker = Receiver()
    sim.callbacks = True
    app = web.Application()
    app.router.add_post("/v1/webhooks/twilio/{hook}", taker.take)
    async with TestServer(app, host="127.0.0.1") as server:
        taker.base_url = str(server.make_url("")).rstrip("/")
        yield taker


# -- what goes to Twilio -----------------------------------------------------------------------


async def test_an_sms_goes_out_with_its_number_sender_text_and_callback(
    sms: TwilioSmsChannel, sim: TwilioSimulator
) -> None:
    """An SMS is created with the member's number, one of our senders, the text and the callback URL (our status
    webhook for its delivery, asking Twilio to retry it); the receipt holds Twilio's MessageSid and says SENT."""
    receipt = await sms.send(message())
    [record] = sim.ledger
    assert receipt == Receipt(provider_id=record.sid, status=ReceiptStatus.SENT)
    assert receipt.provider_id.startswith("SM") and len(receipt.provider_id) == 34
    assert (record.kind, record.to, record.body) == ("sms", MEMBER, "Inbraak in de Baljuwstraat")
    assert record.from_ in SENDERS
    assert record.status_callback == "https://plp.example/v1/webhooks/twilio/status?d=a1:sms:m1#rc=5&rp=all"


async def test_sms_senders_are_spread_over_the_configured_numbers(sms: TwilioSmsChannel, sim: TwilioSimulator) -> None:
    """Concurrent sends take the sender numbers in turn, so each number carries an equal share."""
    await asyncio.gather(*(sms.send(message(n=n)) for n in range(9)))
    assert Counter(record.from_ for record in sim.ledger) == dict.fromkeys(SENDERS, 3)


async def test_a_send_holding_a_limit_slot_takes_that_slots_sender(sms: TwilioSmsChannel, sim: TwilioSimulator) -> None:
    """A send that holds slot k of the account's SMS limit goes from sender k mod n: workers sharing the
    account give consecutive slots to consecutive numbers, so each number keeps its own rate."""
    slots = [1000 + n for n in range(6)]
    for n, slot in enumerate(slots):
        await sms.send(replace(message(n=n), slot=slot))

    assert [record.from_ for record in sim.ledger] == [SENDERS[slot % len(SENDERS)] for slot in slots]


async def test_a_messaging_service_chooses_the_sender_when_configured(build: Build, sim: TwilioSimulator) -> None:
    """With a Messaging Service, the SMS names the service and no sender number: Twilio picks from its pool."""
    service = "MG" + "1" * 32
    await build(twilio_sms_from=(), twilio_messaging_service_sid=service).send(message())
    [record] = sim.ledger
    assert (record.messaging_service_sid, record.from_) == (service, None)


async def test_a_call_plays_the_twiml_with_machine_detection_and_progress_events(
    voice: TwilioVoiceChannel, sim: TwilioSimulator
) -> None:
    """A call is created from our caller number with the message's script as TwiML (the message said twice in the
    member's language and voice, escaped, the key posted to our voice webhook), waits for the end of a voicemail
    greeting, and asks for every progress event; the receipt holds the CallSid."""
    receipt = await voice.send(message(channel=ChannelName.VOICE))
    [record] = sim.ledger
    assert receipt == Receipt(provider_id=record.sid, status=ReceiptStatus.SENT)
    assert receipt.provider_id.startswith("CA")
    assert (record.kind, record.to, record.from_, record.twiml) == ("call", MEMBER, CALLER, TWIML)
    assert record.params["MachineDetection"] == ["DetectMessageEnd"]
    assert record.params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert record.status_callback == "https://plp.example/v1/webhooks/twilio/status?d=a1:voice:m1#rc=5&rp=all"


async def test_a_voice_message_without_a_script_is_a_defect_and_calls_nobody(
    voice: TwilioVoiceChannel, sim: TwilioSimulator
) -> None:
    """A voice message the dispatcher did not compose a call script for raises ValueError; no call is placed."""
    with pytest.raises(ValueError, match="no call script"):
        await voice.send(message(channel=ChannelName.SMS))
    assert sim.ledger == []


# -- what comes back when it goes wrong ----------------------------------------------------------

FAILURES = [
    pytest.param(
        Failure(400, 21211, "The 'To' number +32470000099 is not a valid phone number."),
        PermanentError,
        "number not valid",
        id="21211-invalid-to",
    ),
    pytest.param(
        Failure(400, 21610, "Attempt to send to unsubscribed recipient"),
        PermanentError,
        "replied STOP to the operator",
        id="21610-stop",
    ),
    pytest.param(
        Failure(400, 21614, "'To' number is not a valid mobile number"),
        PermanentError,
        "not a mobile number",
        id="21614-landline",
    ),
    pytest.param(
        Failure(400, 21408, "Permission to send an SMS has not been enabled for the region"),
        PermanentError,
        "refused by Twilio (error 21408): Permission to send an SMS has not been enabled for the region",
        id="other-4xx",
    ),
    pytest.param(Failure(401, 20003, "Authenticate"), NotConfigured, "Twilio refused the credentials", id="401"),
    pytest.param(
        Failure(500, 20500, "Internal server error"),
        TransientError,
        "Twilio answered HTTP 500; the message may have gone out",
        id="500",
    ),
    pytest.param(Failure(503, None, "Service unavailable"), TransientError, "Twilio answered HTTP 503", id="503"),
    pytest.param(
        Failure(429, 20429, "Too Many Requests", retry_after="7"),
        RateLimited,
        "Twilio is rate limiting the account",
        id="429-retry-after",
    ),
]


@pytest.mark.parametrize(("failure", "error", "words"), FAILURES)
async def test_twilio_errors_say_whose_fault_a_failure_is(
    sms: TwilioSmsChannel, sim: TwilioSimulator, failure: Failure, error: type[ChannelError], words: str
) -> None:
    """Each refusal by Twilio becomes the channel error that says whose fault it is, in plain words, raised
    from the library's exception."""
    sim.failures[MEMBER] = failure
    with pytest.raises(ChannelError) as raised:
        await sms.send(message())
    assert type(raised.value) is error
    assert str(raised.value) == words
    assert isinstance(raised.value.__cause__, TwilioRestException)
    assert sim.ledger == []


async def test_rate_limits_carry_twilio_retry_after_or_one_second(sms: TwilioSmsChannel, sim: TwilioSimulator) -> None:
    """A 429 waits as long as its Retry-After says, or one second without it; concurrent sends each get
    the delay of their own answer."""
    sim.failures = {"+32470000001": (429, 20429, "Too Many Requests", "7"), "+32470000002": (429, 20429, "Slow")}
    outcomes = await asyncio.gather(
        sms.send(message(to="+32470000001")), sms.send(message(to="+32470000002")), return_exceptions=True
    )
    assert all(isinstance(outcome, RateLimited) for outcome in outcomes)
    assert [outcome.retry_after for outcome in outcomes if isinstance(outcome, RateLimited)] == [7.0, 1.0]


async def test_the_voice_channel_translates_errors_the_same_way(
    voice: TwilioVoiceChannel, sim: TwilioSimulator
) -> None:
    """A call to a number Twilio finds invalid fails permanently, with the same plain reason as an SMS."""
    sim.failures[MEMBER] = (400, 21211, "The 'To' number is not a valid phone number.")
    with pytest.raises(PermanentError) as raised:
        await voice.send(message(channel=ChannelName.VOICE))
    assert raised.value.reason == "number not valid"


async def test_a_hung_twilio_raises_a_transient_error_within_the_provider_timeout(
    build: Build, sim: TwilioSimulator
) -> None:
    """When Twilio does not answer, the send gives up after provider_timeout with a TransientError that says
    the message may have gone out (the request did reach Twilio)."""
    sim.latency = 30
    channel = build(provider_timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TransientError, match="may have gone out") as raised:
        async with asyncio.timeout(5):  # the bound of the test itself, should the channel hang
            await channel.send(message())
    assert type(raised.value) is TransientError
    assert loop.time() - started < 2


async def test_a_connection_broken_after_sending_is_transient(sms: TwilioSmsChannel, sim: TwilioSimulator) -> None:
    """A connection that closes after the request went out is transient, and may have sent the message."""
    sim.drop.add(MEMBER)
    with pytest.raises(TransientError, match="may have gone out"):
        await sms.send(message())


async def test_an_unreachable_twilio_is_transient_and_nothing_was_sent(build: Build) -> None:
    """When nothing listens at the API address, the send is transient and says nothing was sent."""
    with pytest.raises(TransientError, match="nothing was sent") as raised:
        await build(base_url=f"http://127.0.0.1:{free_port()}").send(message())
    assert raised.value.may_have_sent is False


async def test_a_connection_not_made_within_the_provider_timeout_sent_nothing(build: Build) -> None:
    """When the API address does not answer the connection, the send fails once the provider timeout is over,
    saying nothing was sent."""
    with unconnectable_port() as port, pytest.raises(TransientError, match="nothing was sent") as raised:
        await build(base_url=f"http://127.0.0.1:{port}", provider_timeout=0.3).send(message())
    assert raised.value.may_have_sent is False


#: What Twilio does with the request -> the error the channel raises, whether it says the message may have
#: gone, whether Twilio has it. Nothing is in doubt when Twilio refuses (4xx, 429, 503); everything is once
#: the request went out and no answer came, or a 500, 502 or 504 did.
PHASES = [
    pytest.param(Fault.THROTTLE, RateLimited, False, False, id="429"),
    pytest.param(Fault.SERVER_ERROR, TransientError, False, False, id="503"),
    pytest.param(Fault.RESET, TransientError, True, False, id="read-then-closed"),  # it cannot tell this one
    pytest.param(Fault.TAKEN_THEN_RESET, TransientError, True, True, id="taken-then-closed"),
    pytest.param(Fault.TAKEN_THEN_ERROR, TransientError, True, True, id="taken-then-500"),
    pytest.param(Fault.TIMEOUT, TransientError, True, True, id="taken-then-no-answer-in-time"),
]


@pytest.mark.parametrize(("fault", "error", "may_have_sent", "taken"), PHASES)
async def test_a_failed_send_may_have_gone_only_once_the_request_went_out_unanswered(
    build: Build, sim: TwilioSimulator, fault: Fault, error: type[Exception], may_have_sent: bool, taken: bool
) -> None:
    """The channel says a failed message may have gone exactly when Twilio may have it: the request went out
    and no answer came, or a server error after which Twilio may have acted."""
    sim.faults = FaultPlan(seed=1, rates={fault: 1.0}, hold=1.0, retry_after=1)
    with pytest.raises(error) as raised:
        await build(provider_timeout=0.3).send(message())
    assert isinstance(raised.value, TransientError) and raised.value.may_have_sent is may_have_sent
    assert len(sim.ledger) == int(taken)


async def test_a_refused_number_never_may_have_gone(sms: TwilioSmsChannel, sim: TwilioSimulator) -> None:
    """A request Twilio refuses with a 4xx is permanent, and nothing is in doubt."""
    sim.failures[MEMBER] = Failure(400, 21211, "The 'To' number is not a valid phone number.")
    with pytest.raises(PermanentError) as raised:
        await sms.send(message())
    assert not isinstance(raised.value, TransientError) and sim.ledger == []


async def test_wrong_credentials_mean_not_configured(build: Build, sim: TwilioSimulator) -> None:
    """A token Twilio refuses makes the channel NotConfigured; the simulator accepts nothing."""
    with pytest.raises(NotConfigured, match="Twilio refused the credentials"):
        await build(twilio_auth_token="not-the-token").send(message())
    assert sim.ledger == []


# -- secrets -----------------------------------------------------------------------------------


async def test_the_auth_token_shows_in_no_repr_and_no_log_line(
    build: Build, sim: TwilioSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the token nor the Authorization header made from it appears in the reprs of the settings, the
    account, the channels, the errors, or in any log record of a send that works and one that is refused."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="twilio")  # configure_logging quietens it in other tests
    settings = twilio_settings(sim.base_url)
    sms, voice = build(), build(TwilioVoiceChannel)
    sim.failures["+32470000099"] = (400, 21211, "The 'To' number is not a valid phone number.")
    with structlog.testing.capture_logs() as events:
        await sms.send(message())
        await voice.send(message(channel=ChannelName.VOICE))
        with pytest.raises(PermanentError) as refused:
            await sms.send(message(to="+32470000099"))
    shown = [
        repr(settings),
        str(settings),
        repr(TwilioAccount.from_settings(settings)),
        repr(sms),
        repr(voice),
        repr(refused.value),
        repr(refused.value.__cause__),
        str(refused.value.__cause__),
        caplog.text,
        repr(events),
    ]
    credentials = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert "twilio.async_http_client" in caplog.text  # the library did log its requests
    for text in shown:
        assert TOKEN not in text
        assert credentials not in text
    assert ACCOUNT in repr(sms)


# -- what Twilio calls back -------------------------------------------------------------------


async def test_sms_status_callbacks_arrive_signed(build: Build, sim: TwilioSimulator, receiver: Receiver) -> None:
    """After an SMS, Twilio calls back "sent" then "delivered" for its MessageSid, each with a signature the
    request validator accepts."""
    sms = build(public_base_url=receiver.base_url)
    receipt = await sms.send(message())
    await sim.callbacks_done()
    assert receiver.statuses() == ["sent", "delivered"]
    assert all(w.signed and w.params["MessageSid"] == receipt.provider_id for w in receiver.webhooks)
    assert [callback.answered for callback in sim.ledger[0].callbacks] == [204, 204]


async def test_an_undelivered_sms_is_called_back_with_its_error_code(
    build: Build, sim: TwilioSimulator, receiver: Receiver
) -> None:
    """A message the carrier cannot deliver is called back "sent", then "undelivered" with ErrorCode 30005."""
    sim.undelivered.add(MEMBER)
    await build(public_base_url=receiver.base_url).send(message())
    await sim.callbacks_done()
    assert receiver.statuses() == ["sent", "undelivered"]
    assert receiver.webhooks[-1].params["ErrorCode"] == "30005"


@pytest.mark.parametrize(
    ("answered_by", "outcome", "statuses"),
    [
        ("human", None, ["initiated", "ringing", "in-progress", "completed"]),
        ("machine_end_beep", None, ["initiated", "ringing", "in-progress", "completed"]),
        (None, "busy", ["initiated", "ringing", "busy"]),
        (None, "no-answer", ["initiated", "ringing", "no-answer"]),
    ],
)
async def test_call_progress_is_called_back_with_who_answered(
    build: Build,
    sim: TwilioSimulator,
    receiver: Receiver,
    answered_by: str | None,
    outcome: str | None,
    statuses: list[str],
) -> None:
    """A call is called back at each progress event, signed; an answered call says who answered (a person or
    a voicemail) and how long it lasted."""
    if answered_by:
        sim.answered_by[MEMBER] = answered_by
    if outcome:
        sim.call_outcomes[MEMBER] = outcome
    voice = build(TwilioVoiceChannel, public_base_url=receiver.base_url)
    receipt = await voice.send(message(channel=ChannelName.VOICE))
    await sim.callbacks_done()
    assert receiver.statuses("CallStatus") == statuses
    assert all(w.signed and w.params["CallSid"] == receipt.provider_id for w in receiver.webhooks)
    answered = [w.params for w in receiver.webhooks if w.params["CallStatus"] == "in-progress"]
    assert [params["AnsweredBy"] for params in answered] == ([answered_by] if answered_by else [])
    if answered_by:
        assert receiver.webhooks[-1].params["CallDuration"] == str(sim.call_duration)


@pytest.mark.parametrize("forge", [False, True], ids=["genuine", "forged"])
async def test_only_genuinely_signed_inbound_traffic_validates(
    sim: TwilioSimulator, receiver: Receiver, forge: bool
) -> None:
    """Inbound SMS and pressed digits signed with the account's token validate; forged ones do not."""
    sms_answer = await sim.incoming_sms(receiver.url("sms"), "+32470123456", SENDERS[0], "STOP", forge=forge)
    call_sid = "CA" + "2" * 32
    digits_answer = await sim.press_digits(receiver.url("gather"), call_sid, "1", CALLER, MEMBER, forge=forge)
    expected = 403 if forge else 204
    assert (sms_answer[0], digits_answer[0]) == (expected, expected)
    assert [(w.hook, w.signed) for w in receiver.webhooks] == [("sms", not forge), ("gather", not forge)]
    assert receiver.webhooks[0].params["Body"] == "STOP"
    assert receiver.webhooks[1].params["Digits"] == "1"


# -- the channel's life -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "sms_ready", "voice_ready"),
    [
        ({}, False, False),
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN}, False, False),
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "twilio_sms_from": SENDERS}, True, False),
        (
            {"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "twilio_messaging_service_sid": "MG1"},
            True,
            False,
        ),
        ({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "twilio_voice_from": CALLER}, False, True),
        ({"twilio_sms_from": SENDERS, "twilio_voice_from": CALLER}, False, False),
    ],
)
def test_each_channel_is_configured_only_with_its_account_and_sender(
    fields: dict[str, Any], sms_ready: bool, voice_ready: bool
) -> None:
    """SMS needs the account and a sender or a Messaging Service, voice the account and a caller number;
    building a channel the settings cannot serve raises NotConfigured."""
    settings = Settings(**fields)
    assert (TwilioSmsChannel.configured(settings), TwilioVoiceChannel.configured(settings)) == (sms_ready, voice_ready)
    for cls, ready in ((TwilioSmsChannel, sms_ready), (TwilioVoiceChannel, voice_ready)):
        if not ready:
            with pytest.raises(NotConfigured):
                cls.from_settings(settings)


def test_building_a_channel_opens_nothing() -> None:
    """A channel is built outside any event loop without making an HTTP session: that waits for the first send."""
    settings = twilio_settings("http://127.0.0.1:9")
    channels: list[VendorChannel] = [
        TwilioSmsChannel.from_settings(settings),
        TwilioVoiceChannel.from_settings(settings),
    ]
    assert [(c.name, c.max_text_length) for c in channels] == [("sms", 1600), ("voice", None)]


async def test_prepare_makes_the_session_without_calling_twilio_and_close_releases_it(sim: TwilioSimulator) -> None:
    """Preparing builds the library's client and its session in the running loop, with no request; the send that
    follows goes out as any other, and closing leaves no unclosed session."""
    channel = TwilioSmsChannel.from_settings(twilio_settings(sim.base_url))
    await channel.prepare()
    assert sim.ledger == []
    await channel.send(message())
    assert [(r.kind, r.to) for r in sim.ledger] == [("sms", MEMBER)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await channel.close()
        del channel
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_close_releases_the_http_session(sim: TwilioSimulator) -> None:
    """Closing after a send leaves no unclosed aiohttp session behind; closing twice, or unused, is harmless."""
    account = TwilioAccount(ACCOUNT, SecretStr(TOKEN), sim.base_url)
    unused = TwilioVoiceChannel(account, public_base_url=PUBLIC, caller_id=CALLER)
    await unused.close()
    channel = TwilioSmsChannel.from_settings(twilio_settings(sim.base_url))
    await channel.send(message())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await channel.close()
        await channel.close()
        del channel
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# -- what Twilio's webhooks say, in the dispatcher's words -------------------------------------------


def _webhook(params: dict[str, str], *, delivery: str = "a1:sms:m1", headers: dict[str, str] | None = None) -> Any:
    return WebhookRequest(
        url=f"{PUBLIC}/v1/webhooks/twilio/status?d={delivery}",
        headers=headers or {},
        query={"d": delivery},
        form=params,
    )


@pytest.mark.parametrize(
    ("params", "status", "cause"),
    [
        ({"MessageStatus": "queued"}, None, ""),
        ({"MessageStatus": "sent"}, DeliveryStatus.SENT, ""),
        ({"MessageStatus": "read"}, DeliveryStatus.DELIVERED, ""),
        ({"MessageStatus": "undelivered", "ErrorCode": "30005"}, DeliveryStatus.FAILED, ""),
        ({"CallStatus": "ringing"}, DeliveryStatus.SENT, ""),
        ({"CallStatus": "completed", "AnsweredBy": "human"}, DeliveryStatus.DELIVERED, ""),
        ({"CallStatus": "completed", "AnsweredBy": "machine_end_beep"}, DeliveryStatus.DELIVERED, VOICEMAIL),
        ({"CallStatus": "completed", "AnsweredBy": "fax"}, DeliveryStatus.FAILED, FAX),
        ({"CallStatus": "no-answer"}, DeliveryStatus.FAILED, "no answer"),
    ],
)
def test_statuses_become_the_dispatchers_words(
    params: dict[str, str], status: DeliveryStatus | None, cause: str
) -> None:
    """Each message or call status Twilio reports moves the delivery as the table says (or not at all), with the
    cause in words; an error code is kept, and the event is named by Twilio's idempotency token when it gives one."""
    headers = {"I-Twilio-Idempotency-Token": "evt-1"}
    report = TwilioInbound(SecretStr(TOKEN)).parse(STATUS, _webhook({**params, "MessageSid": "SM1"}, headers=headers))
    assert isinstance(report, StatusReport)
    assert (report.delivery_id, report.status, report.cause, report.event_id) == ("a1:sms:m1", status, cause, "evt-1")
    assert report.error == ("Twilio error 30005" if "ErrorCode" in params else "")


@pytest.mark.parametrize(
    "signed_url",
    [f"{PUBLIC}/v1/webhooks/twilio/status?d=a1:sms:m1", f"{PUBLIC}/v1/webhooks/twilio/status?d=a1:sms:m1{RETRIES}"],
)
def test_a_signature_verifies_for_the_url_twilio_was_given(signed_url: str) -> None:
    """A request signed for its public URL, with or without our connection overrides, is genuine; signed with
    another token, or without a token configured here, it is refused."""
    params = {"MessageStatus": "sent", "MessageSid": "SM1"}
    signature = RequestValidator(TOKEN).compute_signature(signed_url, params)
    request = _webhook(params, headers={"X-Twilio-Signature": signature})
    assert TwilioInbound(SecretStr(TOKEN)).verify(STATUS, request) is None
    assert TwilioInbound(SecretStr("another")).verify(STATUS, request) is not None
    assert TwilioInbound(None).verify(STATUS, request) is not None
