"""What Twilio calls back: message and call statuses, incoming SMS, keys pressed in a call.

Every request must carry an ``X-Twilio-Signature`` that the ``twilio`` library's validator
accepts, with the account's auth token, for the URL Twilio was given: the public URL of the
request, with or without the connection overrides (``RETRIES``) that our callback URLs carry in
their fragment, which Twilio signs but never sends.

Twilio's words become the dispatcher's here, and only here::

    MessageStatus sent / delivered, read / undelivered, failed    sent / delivered / failed
    CallStatus initiated, ringing / in-progress, answered,         sent / delivered / failed
        completed / busy, no-answer, failed, canceled              (with the cause in words)
    AnsweredBy machine_* / fax                                     left on voicemail / failed (a fax)
    queued, accepted, scheduled, sending                           nothing to record
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from channels.inbound import (
    DELIVERY_PARAMETER,
    FAX,
    VOICEMAIL,
    Answer,
    Body,
    CallKeys,
    Event,
    Hook,
    HookAnswer,
    StatusReport,
    TextMessage,
    WebhookRequest,
    hook_path,
)
from channels.twilio import twiml
from config import Settings
from dispatcher.core.models import ChannelName, DeliveryStatus, Language

VENDOR = "twilio"
#: Twilio's connection overrides, in the fragment of the callback URLs we give it: by default Twilio
#: retries a webhook once, and only when it cannot connect; a 503 (our Redis restarting) would lose a
#: status or a member's key press. With these it retries up to 5 times on any failure, within its
#: 15-second total. Twilio signs the URL as given; the fragment never reaches us (see ``verify``).
RETRIES = "#rc=5&rp=all"

#: Twilio message statuses -> where the delivery moves (None: nothing to record).
MESSAGE_STATUS: dict[str, DeliveryStatus | None] = {
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}
#: Twilio call statuses -> where the delivery moves (None: nothing to record).
CALL_STATUS: dict[str, DeliveryStatus | None] = {
    "queued": None,
    "initiated": DeliveryStatus.SENT,
    "ringing": DeliveryStatus.SENT,
    "in-progress": DeliveryStatus.DELIVERED,  # answered, by a person or a voicemail
    "answered": DeliveryStatus.DELIVERED,
    "completed": DeliveryStatus.DELIVERED,
    "busy": DeliveryStatus.FAILED,
    "no-answer": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
CALL_FAILURE = {"busy": "line busy", "no-answer": "no answer", "failed": "call failed", "canceled": "call cancelled"}
#: ``AnsweredBy`` values under which a key pressed in a call is the member's own act: a person, or a call
#: the detection could not classify (most often a person who said nothing). Every ``machine_*`` value and
#: ``fax`` mean no person is on the line: tones a voicemail or a fax plays are not an acknowledgement.
PERSON_ANSWERED = frozenset({"human", "unknown"})

_FORM = "Twilio posts application/x-www-form-urlencoded"
STATUS = Hook(
    name="twilio_status",
    path="status",
    summary="Twilio status callback of a message or a call (signed); moves the delivery forward",
    body=Body.FORM,
    answers={204: None},
    expects=_FORM,
)
SMS = Hook(
    name="twilio_sms",
    path="sms",
    summary="An SMS from a member (signed): acknowledgement, STOP, or feedback; answered in TwiML",
    body=Body.FORM,
    answers={200: twiml.TWIML},
    expects=_FORM,
)
VOICE = Hook(
    name="twilio_voice",
    path="voice",
    summary="Keys pressed during an alert call (signed): 1 acknowledges; answered in TwiML",
    body=Body.FORM,
    answers={200: twiml.TWIML},
    expects=_FORM,
)


def callback_url(public_base_url: str, hook: Hook, delivery_id: str) -> str:
    """Where Twilio calls back about one delivery on ``hook``, with our connection overrides."""
    path = hook_path(VENDOR, hook.path)
    return f"{public_base_url.rstrip('/')}{path}?{DELIVERY_PARAMETER}={delivery_id}{RETRIES}"


class TwilioInbound:
    """Twilio's webhooks, checked with the account's auth token."""

    vendor: ClassVar[str] = VENDOR
    hooks: ClassVar[tuple[Hook, ...]] = (STATUS, SMS, VOICE)

    def __init__(self, auth_token: SecretStr | None) -> None:
        self._validator = RequestValidator(auth_token.get_secret_value()) if auth_token is not None else None

    def __repr__(self) -> str:
        return "TwilioInbound()"

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioInbound:
        """Checks with TWILIO_AUTH_TOKEN; without one, every request is refused."""
        return cls(settings.twilio_auth_token)

    def verify(self, hook: Hook, request: WebhookRequest) -> str | None:
        """None if the signature verifies for the URL Twilio was given (with our overrides or not)."""
        signature = request.headers.get("X-Twilio-Signature", "")
        urls = (request.url, request.url + RETRIES)
        params = dict(request.form)
        if (
            signature
            and self._validator is not None
            and any(self._validator.validate(url, params, signature) for url in urls)
        ):
            return None
        return "the X-Twilio-Signature does not verify for this URL"

    def parse(self, hook: Hook, request: WebhookRequest) -> Event | None:
        """A ``StatusReport`` (status), a ``TextMessage`` (sms) or ``CallKeys`` (voice)."""
        params, delivery = request.form, request.query.get(DELIVERY_PARAMETER, "")
        if hook is SMS:
            return TextMessage(
                channel=ChannelName.SMS,
                sender=params.get("From", ""),
                text=params.get("Body", ""),
                event_id=_event(request, params.get("MessageSid", ""), "inbound"),
                answer_inline=True,  # Twilio queues the answer on the number it answers from
            )
        if hook is VOICE:
            answered_by = params.get("AnsweredBy", "")
            return CallKeys(
                channel=ChannelName.VOICE,
                delivery_id=delivery,
                keys=params.get("Digits", ""),
                event_id=_event(request, params.get("CallSid", ""), "digits", delivery),
                by_person=answered_by in PERSON_ANSWERED if answered_by else None,
                answered_by=answered_by,
            )
        return _status(request, delivery)

    def answer(self, hook: Hook, request: WebhookRequest, answer: Answer | None) -> HookAnswer:
        """No content for a status; TwiML for an SMS (the answer sent back, if any) and for keys (said)."""
        if hook is STATUS:
            return HookAnswer(204)
        if hook is VOICE and answer is not None and answer.text is not None:
            language = answer.language or Language.FR
            return HookAnswer(200, twiml.spoken(answer.text, language), media_type=twiml.TWIML)
        return HookAnswer(200, twiml.message(answer.text if answer else None), media_type=twiml.TWIML)


def _status(request: WebhookRequest, delivery: str) -> StatusReport:
    params = request.form
    if "CallStatus" in params:
        reported = params["CallStatus"]
        status, cause = _answered_by_machine(
            CALL_STATUS.get(reported), CALL_FAILURE.get(reported, ""), params.get("AnsweredBy", "")
        )
        provider_id = params.get("CallSid", "")
    else:
        reported = params.get("MessageStatus", "")
        status, cause = MESSAGE_STATUS.get(reported), ""
        provider_id = params.get("MessageSid", "")
    return StatusReport(
        delivery_id=delivery,
        reported=reported,
        status=status,
        provider_id=provider_id,
        event_id=_event(request, provider_id, reported, delivery),
        error=f"Twilio error {params['ErrorCode']}" if params.get("ErrorCode") else "",
        cause=cause,
    )


def _answered_by_machine(
    status: DeliveryStatus | None, cause: str, answered_by: str
) -> tuple[DeliveryStatus | None, str]:
    """A call a voicemail took is delivered, and says so; one a fax took reached nobody: it failed."""
    if answered_by == "fax" and status is DeliveryStatus.DELIVERED:
        return DeliveryStatus.FAILED, FAX
    if answered_by.startswith("machine"):
        return status, VOICEMAIL
    return status, cause


def _event(request: WebhookRequest, *parts: str) -> str:
    # Twilio names each webhook delivery; its retries carry the same token.
    return request.headers.get("I-Twilio-Idempotency-Token") or ":".join(parts)
