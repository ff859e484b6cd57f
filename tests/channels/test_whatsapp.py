"""The WhatsApp channel: pywa's async client against a Cloud API simulator on loopback (tests/simulators/whatsapp.py),
its error table, and its webhooks' signature, handshake and events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.abc
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from channels.base import (
    NotConfigured,
    OutboundMessage,
    PermanentError,
    Purpose,
    RateLimited,
    ReceiptStatus,
    TransientError,
)
from channels.inbound import ButtonPress, StatusReport, TextMessage, WebhookRequest
from channels.whatsapp import POOL_SIZE, WhatsAppChannel, WhatsAppInbound
from channels.whatsapp.inbound import UPDATE
from channels.whatsapp.templates import ACK_BUTTON, HEADINGS, parameter, registrations, template_name
from config import Settings
from dispatcher.core.models import ChannelName, DeliveryStatus, Language, Urgency
from tests.simulators.whatsapp import Failure, WhatsAppSimulator
from tests.support import unconnectable_port

TOKEN, PHONE_ID, SECRET = "wa-token", "1001", "app-secret"
NUMBER = "+32470123456"


@pytest.fixture
async def sim() -> AsyncIterator[WhatsAppSimulator]:
    async with WhatsAppSimulator(token=TOKEN, phone_id=PHONE_ID, app_secret=SECRET) as simulator:
        yield simulator


def settings_for(sim: WhatsAppSimulator, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "whatsapp_token": TOKEN,
        "whatsapp_phone_id": PHONE_ID,
        "whatsapp_api_base_url": sim.base_url,
        "provider_timeout": 2.0,
    }
    return Settings(**(values | overrides))


def message(
    *,
    language: Language = Language.FR,
    purpose: Purpose | None = Purpose.URGENT,
    answers: tuple[str, ...] = (),
    address: str = NUMBER,
    text: str = "[PLP Marolles] URGENT\n\nCambriolage rue Haute, soyez attentifs.",
) -> OutboundMessage:
    did = "a1:whatsapp:m1"
    return OutboundMessage(
        delivery_id=did,
        alert_id="a1",
        member_id="m1",
        channel=ChannelName("whatsapp"),
        address=address,
        language=language,
        urgency=Urgency.URGENT,
        subject="[PLP Marolles] URGENT",
        text=text,
        ack_label="Bien reçu",
        ack_data=f"ack:{did}",
        buttons=tuple((label, f"ans:{n}:{did}") for n, label in enumerate(answers, start=1)),
        purpose=purpose,
    )


# -- sending -------------------------------------------------------------------------------------


async def test_prepare_builds_the_client_without_calling_the_graph_api(sim: WhatsAppSimulator) -> None:
    """Preparing the channel (as a worker does when it starts) makes no request; the send that follows goes out."""
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        await channel.prepare()
        assert sim.ledger == []
        await channel.send(message(language=Language.FR))
    finally:
        await channel.close()
    assert len(sim.ledger) == 1


class _ImportsSeen(importlib.abc.MetaPathFinder):
    """Notes every module Python looks for that is not imported yet (a failed import looks again each time)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        self.names.append(fullname)
        return None  # the other finders go on as usual


async def test_a_send_looks_for_no_module(sim: WhatsAppSimulator) -> None:
    """Once the first message is out, the next ones import nothing: a module the libraries try to import and that is
    not installed is searched for on disk on every try (httpcore tried ``sniffio`` at every lock: 7% of a worker's
    CPU)."""
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    seen = _ImportsSeen()
    try:
        await channel.send(message())
        sys.meta_path.insert(0, seen)
        for _ in range(10):
            await channel.send(message())
    finally:
        if seen in sys.meta_path:
            sys.meta_path.remove(seen)
        await channel.close()
    assert len(sim.ledger) == 11
    assert seen.names == []


@pytest.mark.parametrize("language", list(Language))
async def test_an_alert_goes_out_as_the_template_of_its_purpose_in_the_members_language(
    sim: WhatsAppSimulator, language: Language
) -> None:
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        receipt = await channel.send(message(language=language))
    finally:
        await channel.close()
    [sent] = sim.ledger
    assert receipt.status is ReceiptStatus.SENT and receipt.provider_id == sent.wamid
    assert (sent.name, sent.language, sent.to) == ("plp_urgent", language.value, "32470123456")
    assert sent.parameter == "[PLP Marolles] URGENT | Cambriolage rue Haute, soyez attentifs."
    assert sent.payloads == ("ack:a1:whatsapp:m1",)
    assert sent.tracker == "a1:whatsapp:m1"  # comes back with every status of the message


async def test_answer_options_pick_the_template_with_as_many_buttons_and_are_numbered_in_the_text(
    sim: WhatsAppSimulator,
) -> None:
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        await channel.send(message(purpose=Purpose.NON_URGENT, answers=("Je n'ai rien vu", "J'ai vu quelque chose")))
    finally:
        await channel.close()
    [sent] = sim.ledger
    assert sent.name == "plp_non_urgent_a2"
    assert sent.parameter.endswith("| [1] Je n'ai rien vu [2] J'ai vu quelque chose")
    assert sent.payloads == ("ack:a1:whatsapp:m1", "ans:1:a1:whatsapp:m1", "ans:2:a1:whatsapp:m1")


@pytest.mark.parametrize(
    ("purpose", "name"),
    [
        (Purpose.URGENT, "plp_urgent"),
        (Purpose.NON_URGENT, "plp_non_urgent"),
        (Purpose.POLICE_FEEDBACK, "plp_police_feedback"),
        (Purpose.FOLLOW_UP, "plp_follow_up"),
        (Purpose.DRILL, "plp_drill"),
    ],
)
async def test_each_purpose_has_its_template(sim: WhatsAppSimulator, purpose: Purpose | None, name: str) -> None:
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        await channel.send(message(purpose=purpose))
    finally:
        await channel.close()
    assert [s.name for s in sim.ledger] == [name]


async def test_a_reply_of_the_service_is_a_plain_text_within_the_window_the_members_message_opened(
    sim: WhatsAppSimulator,
) -> None:
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        await channel.send(message(purpose=None, text="Merci.\nEn cas d'urgence, appelez le 101 ou le 112."))
    finally:
        await channel.close()
    [sent] = sim.ledger
    assert (sent.name, sent.parameter) == ("", "Merci.\nEn cas d'urgence, appelez le 101 ou le 112.")
    assert sent.body["type"] == "text"


def test_the_templates_to_register_cover_every_purpose_language_and_number_of_answers() -> None:
    found = {(t["name"], t["language"]) for t in registrations("plp")}
    assert len(found) == len(Purpose) * len(Language) * 5
    assert ("plp_drill_a4", "de") in found
    [urgent_fr] = [t for t in registrations("plp") if (t["name"], t["language"]) == ("plp_urgent", "fr")]
    body, buttons = urgent_fr["components"]
    assert body["text"] == "🚨 Alerte urgente de votre PLP\n\n{{1}}"
    assert [b["text"] for b in buttons["buttons"]] == ["Bien reçu"]
    assert template_name("plp", Purpose.FOLLOW_UP, 3) == "plp_follow_up_a3"


def test_the_parameter_is_one_line_as_meta_wants_it_and_cut_to_fit() -> None:
    assert parameter("a\n\n  b\tc     d") == "a | b c d"
    long = parameter("x" * 5000)
    assert len(long) == 900 and long.endswith("…")


def test_the_readme_gives_every_template_text() -> None:
    from pathlib import Path

    readme = Path(__file__).parents[2].joinpath("README.md").read_text()
    for purpose in Purpose:
        for language in Language:
            assert HEADINGS[purpose][language] in readme
    for label in ACK_BUTTON.values():
        assert label in readme


# -- the error table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "expected", "words"),
    [
        (Failure(400, 131026, "Message undeliverable"), PermanentError, "not reachable on WhatsApp"),
        (Failure(400, 131047, "Re-engagement message"), PermanentError, "more than 24 hours"),
        (Failure(400, 131050, "User stopped"), PermanentError, "stopped messages from this business"),
        (Failure(400, 132015, "Template paused"), PermanentError, "paused by Meta"),
        (Failure(400, 132012, "Param format"), PermanentError, "parameter is not in the format"),
        (Failure(400, 100, "Invalid parameter"), PermanentError, "WhatsApp refused the message (100)"),
        (Failure(401, 190, "Invalid OAuth access token"), NotConfigured, "refused the access token"),
        (Failure(500, 131000, "Something went wrong"), TransientError, "may have gone out"),
        (Failure(503, 131016, "Service unavailable"), TransientError, "HTTP 503"),
    ],
)
async def test_refusals_become_the_channel_errors_in_a_coordinators_words(
    sim: WhatsAppSimulator, failure: Failure, expected: type[Exception], words: str
) -> None:
    sim.failures["32470123456"] = failure
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        with pytest.raises(expected) as raised:
            await channel.send(message())
    finally:
        await channel.close()
    assert words in str(raised.value)
    assert type(raised.value) is expected  # not a subclass: a refusal is no rate limit
    if isinstance(raised.value, TransientError):
        assert raised.value.may_have_sent is (failure.status == 500)  # 503: not taken; 500: maybe


async def test_the_throughput_limit_is_a_rate_limit_with_metas_wait(sim: WhatsAppSimulator) -> None:
    sim.throttle_once["32470123456"] = 130429  # answered with Retry-After: 2
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        with pytest.raises(RateLimited) as raised:
            await channel.send(message())
        await channel.send(message())  # once only
    finally:
        await channel.close()
    assert raised.value.retry_after == 2.0 and not raised.value.may_have_sent
    assert len(sim.ledger) == 1


async def test_the_pair_rate_limit_waits_the_configured_gap_between_two_messages_to_one_member(
    sim: WhatsAppSimulator,
) -> None:
    sim.throttle_once["32470123456"] = 131056
    channel = WhatsAppChannel.from_settings(settings_for(sim, limit_whatsapp_per_user_seconds=7.5))
    try:
        with pytest.raises(RateLimited) as raised:
            await channel.send(message())
    finally:
        await channel.close()
    assert raised.value.retry_after == 7.5


async def test_a_template_not_registered_in_a_language_is_permanent_with_the_readme_to_read(
    sim: WhatsAppSimulator,
) -> None:
    sim.templates.discard(("plp_urgent", "de"))
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        with pytest.raises(PermanentError, match=r"not registered .* in this language: see the README"):
            await channel.send(message(language=Language.DE))
    finally:
        await channel.close()


async def test_no_connection_sent_nothing() -> None:
    with unconnectable_port() as port:
        settings = Settings(
            whatsapp_token=TOKEN,
            whatsapp_phone_id=PHONE_ID,
            whatsapp_api_base_url=f"http://127.0.0.1:{port}",
            provider_timeout=0.3,
        )
        channel = WhatsAppChannel.from_settings(settings)
        try:
            with pytest.raises(TransientError) as raised:
                await channel.send(message())
        finally:
            await channel.close()
    assert not raised.value.may_have_sent and "nothing was sent" in str(raised.value)


async def test_a_message_taken_and_never_answered_may_have_gone_out(sim: WhatsAppSimulator) -> None:
    sim.hold.add("32470123456")
    channel = WhatsAppChannel.from_settings(settings_for(sim, provider_timeout=0.3))
    try:
        with pytest.raises(TransientError) as raised:
            await channel.send(message())
    finally:
        await channel.close()
    assert raised.value.may_have_sent and "may have gone out" in str(raised.value)
    assert len(sim.ledger) == 1  # it had: the retry's duplicate is counted, per the duplicates rules


def test_a_number_that_is_not_one_is_permanent() -> None:
    with pytest.raises(PermanentError, match="not a phone number"):
        from channels.whatsapp.sending import _recipient

        _recipient("not-a-number")


def test_without_token_and_phone_id_it_says_what_to_set() -> None:
    settings = Settings()
    assert WhatsAppChannel.missing(settings) == ["WHATSAPP_TOKEN", "WHATSAPP_PHONE_ID"]
    with pytest.raises(NotConfigured, match="set WHATSAPP_TOKEN, WHATSAPP_PHONE_ID"):
        WhatsAppChannel.from_settings(settings)


def test_its_rates_are_the_numbers_and_each_members_in_the_shared_limiter() -> None:
    rates = WhatsAppChannel.rates(Settings(limit_whatsapp_per_second=20, limit_whatsapp_per_user_seconds=4), NUMBER)
    assert [(r.name, r.per_second) for r in rates] == [("whatsapp", 20), (f"whatsapp-user:{NUMBER}", 0.25)]


async def test_the_members_number_never_reaches_the_log(
    sim: WhatsAppSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        await channel.send(message())
        sim.failures["32470123456"] = Failure(400, 131026)
        with pytest.raises(PermanentError):
            await channel.send(message())
    finally:
        await channel.close()
    assert "32470123456" not in caplog.text
    assert "32470123456" not in repr(channel) and "32470123456" not in repr(message())


# -- webhooks ------------------------------------------------------------------------------------


def signed(sim: WhatsAppSimulator, update: dict[str, object], *, forge: bool = False) -> WebhookRequest:
    body = json.dumps(update).encode()
    headers = {"X-Hub-Signature-256": sim.sign(body, forge=forge)}
    return WebhookRequest(
        url="https://plp.example/v1/webhooks/whatsapp", headers=headers, query={}, json=update, body=body
    )


async def test_a_post_counts_only_signed_with_the_apps_secret(sim: WhatsAppSimulator) -> None:
    inbound = WhatsAppInbound(SecretStr(SECRET))
    update = sim.written("32470123456", "OK")
    assert inbound.verify(UPDATE, signed(sim, update)) is None
    assert (
        inbound.verify(UPDATE, signed(sim, update, forge=True)) == "the X-Hub-Signature-256 header is missing or wrong"
    )
    tampered = signed(sim, update)
    tampered = WebhookRequest(url=tampered.url, headers=tampered.headers, query={}, body=tampered.body + b" ")
    assert inbound.verify(UPDATE, tampered) is not None  # the signature covers the body as received
    unsigned = WebhookRequest(url="u", headers={}, query={}, body=b"{}")
    assert inbound.verify(UPDATE, unsigned) is not None
    assert WhatsAppInbound(None).verify(UPDATE, signed(sim, update)) is not None  # no secret: refuse all
    plain = "sha256=" + hmac.new(SECRET.encode(), b"{}", hashlib.sha256).hexdigest()
    assert (
        inbound.verify(UPDATE, WebhookRequest(url="u", headers={"X-Hub-Signature-256": plain}, query={}, body=b"{}"))
        is None
    )


def test_the_handshake_repeats_the_challenge_only_for_our_verify_token() -> None:
    inbound = WhatsAppInbound(SecretStr(SECRET), SecretStr("verify-me"))
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    assert inbound.challenge(query) == "1158201444"
    assert inbound.challenge(query | {"hub.verify_token": "guess"}) is None
    assert inbound.challenge(query | {"hub.mode": "unsubscribe"}) is None
    assert WhatsAppInbound(SecretStr(SECRET)).challenge(query) is None


async def test_statuses_name_the_delivery_and_read_counts_as_delivered(sim: WhatsAppSimulator) -> None:
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        await channel.send(message())
    finally:
        await channel.close()
    [sent] = sim.ledger
    inbound = WhatsAppInbound(SecretStr(SECRET))
    reports = [inbound.parse(UPDATE, signed(sim, sim.status(sent, s)))[0] for s in ("sent", "delivered", "read")]
    assert all(isinstance(r, StatusReport) for r in reports)
    assert [(r.delivery_id, r.reported, r.status) for r in reports if isinstance(r, StatusReport)] == [
        ("a1:whatsapp:m1", "sent", DeliveryStatus.SENT),
        ("a1:whatsapp:m1", "delivered", DeliveryStatus.DELIVERED),
        ("a1:whatsapp:m1", "read", DeliveryStatus.DELIVERED),
    ]
    assert len({r.event_id for r in reports if isinstance(r, StatusReport)}) == 3  # each its own; a retry the same
    [failed] = inbound.parse(UPDATE, signed(sim, sim.status(sent, "failed", code=131026)))
    assert isinstance(failed, StatusReport)
    assert (failed.status, failed.error, failed.cause) == (DeliveryStatus.FAILED, "131026", "error 131026")


async def test_buttons_carry_their_payload_and_texts_are_replies(sim: WhatsAppSimulator) -> None:
    channel = WhatsAppChannel.from_settings(settings_for(sim))
    try:
        await channel.send(message(answers=("Rien vu", "Vu")))
    finally:
        await channel.close()
    [sent] = sim.ledger
    inbound = WhatsAppInbound(SecretStr(SECRET))
    [ack] = inbound.parse(UPDATE, signed(sim, sim.pressed(sent, 0)))
    [answer] = inbound.parse(UPDATE, signed(sim, sim.pressed(sent, 2)))
    [text] = inbound.parse(UPDATE, signed(sim, sim.written("32470123456", "STOP")))
    assert isinstance(ack, ButtonPress) and (ack.sender, ack.data) == (NUMBER, "ack:a1:whatsapp:m1")
    assert isinstance(answer, ButtonPress) and answer.data == "ans:2:a1:whatsapp:m1"
    assert isinstance(text, TextMessage) and (text.sender, text.text, text.answer_inline) == (NUMBER, "STOP", False)


def test_a_batch_gives_every_event_and_what_is_not_for_us_gives_none(sim: WhatsAppSimulator) -> None:
    inbound = WhatsAppInbound(SecretStr(SECRET))
    one, two = sim.written("32470000001", "un"), sim.written("32470000002", "deux")
    one["entry"][0]["changes"] += two["entry"][0]["changes"]  # type: ignore[index]
    events = inbound.events(signed(sim, one))
    assert [e.text for e in events if isinstance(e, TextMessage)] == ["un", "deux"]
    assert inbound.parse(UPDATE, signed(sim, {"object": "page", "entry": []})) == []
    image = sim.written("32470000001", "x")
    image["entry"][0]["changes"][0]["value"]["messages"][0]["type"] = "image"  # type: ignore[index]
    assert inbound.parse(UPDATE, signed(sim, image)) == []


async def test_messages_held_up_together_leave_the_process_at_the_business_numbers_rate(
    sim: WhatsAppSimulator,
) -> None:
    """Four messages reaching the channel at the same instant (a busy loop held them up together) are written
    one paced interval apart (``WriteSpacing``, taken as each request's headers go out): the fourth not before
    three intervals have passed; each is sent."""
    channel = WhatsAppChannel.from_settings(settings_for(sim, limit_whatsapp_per_second=20, limit_margin=0.01))
    try:
        started = time.monotonic()
        await asyncio.gather(*(channel.send(message(address=f"+3247012345{n}")) for n in range(4)))
        assert time.monotonic() - started >= 3 / (20 * 0.99)
    finally:
        await channel.close()
    assert len(sim.ledger) == 4


async def test_a_batch_of_sends_waits_for_a_connection_in_the_channel_never_in_the_http_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three times as many sends at once as the channel has connections: no more than one a connection is ever
    handed to httpx (whose pool would scan its queue of waiting requests at every request and answer), and every
    one is sent."""
    inside, most = 0, 0
    send = httpx.AsyncClient.send

    async def counting(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        try:
            return await send(self, request, **kwargs)
        finally:
            inside -= 1

    monkeypatch.setattr(httpx.AsyncClient, "send", counting)
    async with WhatsAppSimulator(token=TOKEN, phone_id=PHONE_ID, app_secret=SECRET, latency=0.05) as sim:
        channel = WhatsAppChannel.from_settings(settings_for(sim))
        try:
            sends = 3 * POOL_SIZE
            receipts = await asyncio.gather(*(channel.send(message(address=f"+32470{n:06d}")) for n in range(sends)))
        finally:
            await channel.close()
        assert most == POOL_SIZE
        assert len(sim.ledger) == sends and all(r.status is ReceiptStatus.SENT for r in receipts)
