"""The simulators' fault switches, driven by the real channel classes: what each kind does to a send.

A table per simulator: the fault, the channel error the service sees (and whether it says the
message may have gone), and whether the provider kept the message (its ledger). Then the
replay property the suite relies on, scripts, and the duplicate counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.base import Channel, OutboundMessage, RateLimited, TransientError
from channels.email import SmtpChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioSmsChannel
from config import Settings
from dispatcher.core.models import ChannelName, Language, Urgency
from tests.simulators.apart import VendorProcess
from tests.simulators.faults import Fault, FaultPlan
from tests.simulators.meter import RateMeter
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.telegram import TelegramSimulator
from tests.simulators.twilio import TwilioSimulator

pytestmark = [
    pytest.mark.faults,
    # python-telegram-bot 22 warns when it builds a RetryAfter (on every 429); the channel reads both forms.
    pytest.mark.filterwarnings(
        "ignore:Deprecated since version v22.2. In a future major version attribute .retry_after."
        ":telegram.warnings.PTBDeprecationWarning"
    ),
]

ACCOUNT, TOKEN, BOT = "AC" + "6" * 32, "twilio-token-switches", "4444:bot-token-switches"
ADDRESSES = {ChannelName.SMS: "+32470123456", ChannelName.EMAIL: "ann@example.org", ChannelName.TELEGRAM: "4242"}
TIMEOUT = 0.3  # the client's bound on a call; a TIMEOUT fault answers after HOLD
HOLD = 0.6


@dataclass
class Providers:
    twilio: TwilioSimulator
    smtp: SmtpSimulator
    telegram: TelegramSimulator
    channels: dict[ChannelName, Channel]

    def simulator(self, channel: ChannelName) -> TwilioSimulator | SmtpSimulator | TelegramSimulator:
        return {ChannelName.SMS: self.twilio, ChannelName.EMAIL: self.smtp, ChannelName.TELEGRAM: self.telegram}[
            channel
        ]

    def kept(self, channel: ChannelName) -> int:
        """How many messages the provider took (whatever it answered)."""
        if channel is ChannelName.SMS:
            return len(self.twilio.ledger)
        if channel is ChannelName.EMAIL:
            return len(self.smtp.messages)
        return len([c for c in self.telegram.calls("sendMessage") if c.status == 200])


@pytest.fixture
async def providers() -> AsyncIterator[Providers]:
    async with (
        TwilioSimulator(account_sid=ACCOUNT, auth_token=TOKEN, callbacks=False) as twilio,
        SmtpSimulator() as smtp,
        TelegramSimulator(token=BOT) as telegram,
    ):
        settings = Settings(
            redis_url=None,
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_api_base_url=twilio.base_url,
            twilio_sms_from=("+3225550001",),
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="none",
            smtp_from="alerts@plp.example",
            telegram_bot_token=BOT,
            telegram_api_base_url=telegram.base_url,
            provider_timeout=TIMEOUT,
        )
        channels: dict[ChannelName, Channel] = {
            ChannelName.SMS: TwilioSmsChannel.from_settings(settings),
            ChannelName.EMAIL: SmtpChannel.from_settings(settings),
            ChannelName.TELEGRAM: TelegramChannel.from_settings(settings),
        }
        try:
            yield Providers(twilio, smtp, telegram, channels)
        finally:
            for channel in channels.values():
                await channel.close()


def _message(channel: ChannelName, n: int = 1) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=f"a{n}:{channel.value}:m1",
        alert_id=f"a{n}",
        member_id="m1",
        channel=channel,
        address=ADDRESSES[channel],
        language=Language.FR,
        urgency=Urgency.URGENT,
        subject="Alerte",
        text=f"Cambriolage {n}",
    )


#: fault, channel -> (error class the service sees, may_have_sent, whether the provider kept the message).
#: A fault before the message is taken never says it may have gone, unless the client cannot tell it
#: from one after (an HTTP connection closed once the request was written); every fault after it does.
OUTCOMES = [
    (Fault.SERVER_ERROR, ChannelName.SMS, TransientError, False, False),
    (Fault.SERVER_ERROR, ChannelName.EMAIL, TransientError, False, False),
    (Fault.SERVER_ERROR, ChannelName.TELEGRAM, TransientError, False, False),
    (Fault.TIMEOUT, ChannelName.SMS, TransientError, True, True),
    (Fault.TIMEOUT, ChannelName.EMAIL, TransientError, True, True),
    (Fault.TIMEOUT, ChannelName.TELEGRAM, TransientError, True, True),
    (Fault.RESET, ChannelName.SMS, TransientError, True, False),  # HTTP: written whole, then no answer
    (Fault.RESET, ChannelName.EMAIL, TransientError, False, False),  # SMTP: at the RCPT, before the data
    (Fault.RESET, ChannelName.TELEGRAM, TransientError, True, False),
    (Fault.THROTTLE, ChannelName.SMS, RateLimited, False, False),
    (Fault.THROTTLE, ChannelName.TELEGRAM, RateLimited, False, False),
    (Fault.TAKEN_THEN_RESET, ChannelName.SMS, TransientError, True, True),
    (Fault.TAKEN_THEN_RESET, ChannelName.EMAIL, TransientError, True, True),
    (Fault.TAKEN_THEN_RESET, ChannelName.TELEGRAM, TransientError, True, True),
    (Fault.TAKEN_THEN_ERROR, ChannelName.SMS, TransientError, True, True),
    (Fault.TAKEN_THEN_ERROR, ChannelName.TELEGRAM, TransientError, True, True),
]


@pytest.mark.parametrize(("fault", "channel", "error", "may_have_sent", "kept"), OUTCOMES)
async def test_each_fault_is_seen_by_the_channel_as_its_kind_of_error(
    providers: Providers, fault: Fault, channel: ChannelName, error: type[Exception], may_have_sent: bool, kept: bool
) -> None:
    """A fault at rate 1 fails the send with the error of its kind; the provider keeps the message only after
    the faults that come once it took it."""
    providers.simulator(channel).faults = FaultPlan(seed=1, rates={fault: 1.0}, hold=HOLD, retry_after=0.25)
    with pytest.raises(error) as raised:
        await providers.channels[channel].send(_message(channel))
    assert isinstance(raised.value, TransientError) and raised.value.may_have_sent is may_have_sent
    if fault is Fault.THROTTLE:
        assert raised.value.retry_after == 0.25
    assert providers.kept(channel) == int(kept)
    assert [i.fault for i in providers.simulator(channel).injected] == [fault]


@pytest.mark.parametrize("fault", [Fault.THROTTLE, Fault.TAKEN_THEN_ERROR])
async def test_smtp_never_draws_a_throttle_or_an_error_after_the_data(providers: Providers, fault: Fault) -> None:
    """SMTP has no "retry after", and its reply to the data is the server's word: such plans leave e-mails alone."""
    providers.smtp.faults = FaultPlan(seed=1, rates={fault: 1.0})
    await providers.channels[ChannelName.EMAIL].send(_message(ChannelName.EMAIL))
    assert len(providers.smtp.messages) == 1 and providers.smtp.injected == []


def test_the_same_seed_draws_the_same_faults_whatever_the_order_of_requests() -> None:
    """Each key's n-th draw depends on the seed, the key and n only: replayable under concurrency."""
    rates = {Fault.SERVER_ERROR: 0.3, Fault.THROTTLE: 0.2}
    keys = [f"+3247000{i:04d}" for i in range(50)]
    forward, backward = FaultPlan(seed=7, rates=rates), FaultPlan(seed=7, rates=rates)
    drawn = {(k, n): forward.draw(k, destination=k) for n in range(3) for k in keys}
    replayed = {(k, n): backward.draw(k, destination=k) for k in reversed(keys) for n in range(3)}
    assert drawn == replayed
    assert {f for f in drawn.values()} == {None, Fault.SERVER_ERROR, Fault.THROTTLE}
    assert drawn != {(k, n): FaultPlan(seed=8, rates=rates).draw(k, destination=k) for n in range(3) for k in keys}


def test_rates_that_add_up_to_more_than_one_are_refused() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        FaultPlan(seed=1, rates={Fault.SERVER_ERROR: 0.7, Fault.RESET: 0.4})


async def test_a_script_sets_a_destinations_first_answers_before_any_draw(providers: Providers) -> None:
    """Scripted faults come first, in order (None: that request goes well), then the rates apply."""
    plan = FaultPlan(seed=1, script={ADDRESSES[ChannelName.SMS]: [Fault.THROTTLE, None]}, rates={Fault.RESET: 1.0})
    providers.twilio.faults = plan
    sms = providers.channels[ChannelName.SMS]
    with pytest.raises(RateLimited):
        await sms.send(_message(ChannelName.SMS))
    await sms.send(_message(ChannelName.SMS))
    with pytest.raises(TransientError):
        await sms.send(_message(ChannelName.SMS))
    assert [i.fault for i in providers.twilio.injected] == [Fault.THROTTLE, Fault.RESET]
    assert len(providers.twilio.received) == 3 and len(providers.twilio.ledger) == 1


async def test_each_simulator_counts_a_message_taken_twice_as_one_duplicate(providers: Providers) -> None:
    """The same message to the same person twice is a duplicate; the same text for another alert is not."""
    for channel, message in [(c, _message(c, n)) for c in ADDRESSES for n in (1, 1, 2)]:
        await providers.channels[channel].send(message)
    assert sum(providers.twilio.duplicates().values()) == 1
    assert sum(providers.smtp.duplicates().values()) == 1
    assert sum(providers.telegram.duplicates().values()) == 1


async def test_simulators_in_a_process_of_their_own_answer_the_real_client_and_are_read_and_set_from_the_test() -> None:
    """``VendorProcess``: the Telegram simulator runs in a child process; the real channel sends to it; the test
    reads its ledger and properties (copies), sets its attributes, calls its methods, and awaits its coroutines
    there; an error raised there comes back as itself."""
    async with VendorProcess() as vendors, vendors.serving(TelegramSimulator, token=BOT) as telegram:
        channel = TelegramChannel.from_settings(
            Settings(redis_url=None, telegram_bot_token=BOT, telegram_api_base_url=telegram.base_url)
        )
        try:
            telegram.limit(per_second=1.0)  # a plain method, called there
            for n in (1, 2, 3):
                await channel.send(_message(ChannelName.TELEGRAM, n))
        except RateLimited:
            pass  # the third, beyond a bucket of two at one a second
        finally:
            await channel.close()
        assert [c.params["text"] for c in telegram.calls("sendMessage")] == ["Cambriolage 1", "Cambriolage 2"]
        assert telegram.refused_for_rate == 1  # a property, read there
        telegram.latency = 0.25  # an attribute, set there
        assert telegram.latency == 0.25
        telegram.ledger.clear()  # a copy: the simulator's own ledger is untouched
        assert len(telegram.ledger) == 2
        updates: list[dict[str, Any]] = []

        async def webhook(request: web.Request) -> web.Response:
            updates.append(await request.json())
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/hook", webhook)
        async with TestServer(app) as server:  # a coroutine, run there, posting to this process
            hook = str(server.make_url("/hook"))
            status, _ = await vendors.run(telegram.member_sends(hook, 42, "/stop", secret=None))
        assert status == 200 and [u["message"]["text"] for u in updates] == ["/stop"]
        with pytest.raises(ValueError, match="per_second > 0"):
            telegram.limit(per_second=-1.0)


def test_a_rate_is_judged_at_each_requests_arrival_not_when_the_simulator_gets_to_it() -> None:
    """Two requests that arrived one interval apart are within a bucket of one at that rate, however late the
    simulator's loop noted them; the meter takes the arrival moment."""
    meter = RateMeter(30, burst=1)
    assert meter.admit(1000.0) and meter.admit(1000.0 + 1 / 30)
    assert not meter.admit(1000.0 + 1.5 / 30)
