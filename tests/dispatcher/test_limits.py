"""Provider limits: GCRA slots in the real Redis, urgent callers first, shared by every process;
departures one interval apart whatever delayed a send, numbered for the SMS senders.

Slots and departures are checked through the server-clock times the scripts return
(``Turn.at``, ``Departure.at``), never through the test's own clock. Rates are high (50 to 200
a second) to keep waits short.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis as AsyncRedis

from config import Settings
from dispatcher.core.models import ChannelName
from dispatcher.pipeline.pacing import limits_for, shared_rate
from dispatcher.storage.limits import (
    DEPARTURE_TOLERANCE,
    RESERVE_AHEAD,
    WAITER_GRACE,
    Departure,
    Limit,
    ProviderLimits,
    Turn,
)
from dispatcher.storage.runtime import Runtime

BOUND = 5.0  # seconds: a generous upper bound on any wait in this file
TWILIO: dict[str, Any] = {"twilio_account_sid": "AC0", "twilio_auth_token": SecretStr("secret")}
SENDERS = ("+32460000001", "+32460000002", "+32460000003")
SMTP: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_from": "PLP <alerts@example.org>"}
TELEGRAM: dict[str, Any] = {"telegram_bot_token": SecretStr("123:abc")}
RATES: dict[str, Any] = {
    "limit_sms_per_second": 10.0,
    "limit_voice_per_second": 1.0,
    "limit_telegram_per_second": 30.0,
    "limit_telegram_per_chat_per_second": 1.0,
    "limit_email_per_minute": 600.0,
    "limit_margin": 0.0,
}


@pytest.fixture
async def redis(runtime: Runtime) -> AsyncIterator[AsyncRedis]:
    client = runtime.async_redis()
    yield client
    await client.aclose()


@pytest.fixture
def limits(runtime: Runtime, redis: AsyncRedis) -> ProviderLimits:
    return ProviderLimits(redis, runtime.keys)


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def spacings(turns: list[Turn] | list[Departure]) -> list[int]:
    """Microseconds between successive slots (or departures), in time order."""
    ats = sorted(micros(t.at) for t in turns)
    return [b - a for a, b in itertools.pairwise(ats)]


@pytest.mark.parametrize(
    ("configured", "channel", "expected"),
    [
        ({}, ChannelName.SMS, []),
        ({}, ChannelName.VOICE, []),
        ({}, ChannelName.TELEGRAM, []),
        ({}, ChannelName.EMAIL, []),
        ({**TWILIO, "twilio_voice_from": "+3225550000"}, ChannelName.SMS, []),
        ({**TWILIO, "twilio_sms_from": SENDERS[:1]}, ChannelName.SMS, [Limit("twilio-sms", 10.0)]),
        ({**TWILIO, "twilio_sms_from": SENDERS}, ChannelName.SMS, [Limit("twilio-sms", 30.0)]),
        ({**TWILIO, "twilio_messaging_service_sid": "MG0"}, ChannelName.SMS, [Limit("twilio-sms", 10.0)]),
        ({**TWILIO, "twilio_sms_from": SENDERS}, ChannelName.VOICE, []),
        ({**TWILIO, "twilio_voice_from": "+3225550000"}, ChannelName.VOICE, [Limit("twilio-voice", 1.0)]),
        (TELEGRAM, ChannelName.TELEGRAM, [Limit("telegram", 30.0), Limit("telegram-chat:4242", 1.0)]),
        (SMTP, ChannelName.EMAIL, [Limit("smtp", 10.0)]),
        ({**TWILIO, "twilio_sms_from": SENDERS, **SMTP, **TELEGRAM}, ChannelName.EMAIL, [Limit("smtp", 10.0)]),
    ],
)
def test_limits_follow_the_channel_and_its_configuration(
    settings: Settings, configured: dict[str, Any], channel: ChannelName, expected: list[Limit]
) -> None:
    """Each configured vendor has its limits (SMS: per sender times senders); the outbox has none."""
    configured_settings = settings.model_copy(update={**RATES, **configured})
    address = "4242" if channel is ChannelName.TELEGRAM else "+32470123456"

    assert limits_for(configured_settings, channel, address) == expected


@pytest.mark.parametrize(
    ("name", "per_second", "burst"),
    [("", 1.0, 1), ("smtp", 0.0, 1), ("smtp", -1.0, 1), ("smtp", 1.0, 0)],
)
def test_a_limit_refuses_a_nameless_or_non_positive_setting(name: str, per_second: float, burst: int) -> None:
    """A limit needs a name, a positive rate and a burst of at least one."""
    with pytest.raises(ValueError):
        Limit(name, per_second, burst)


async def test_a_free_limit_lets_the_caller_send_now(limits: ProviderLimits) -> None:
    """On an idle limit, acquire answers 0.0 whatever the urgency."""
    assert await limits.acquire(Limit("smtp", 50), urgent=False) == 0.0
    assert await limits.acquire(Limit("telegram", 50), urgent=True) == 0.0


async def test_a_single_caller_gets_slots_one_interval_apart(limits: ProviderLimits) -> None:
    """After a send, the next is one interval away; a caller's turns are never closer than that."""
    limit = Limit("twilio-sms", 50)

    assert await limits.acquire(limit, urgent=False) == 0.0
    assert 0 < await limits.acquire(limit, urgent=False) <= 0.02
    turns = [await limits.wait_turn([limit], urgent=False) for _ in range(6)]

    assert all(t is not None and t.owned for t in turns)
    assert min(spacings([t for t in turns if t is not None])) >= limit.interval_us


async def test_urgent_callers_reserve_successive_future_slots(limits: ProviderLimits) -> None:
    """Urgent callers each own the next slot, one interval after the previous, and are told to wait for it."""
    limit = Limit("twilio-voice", 50)

    turns = [await limits.take([limit], urgent=True) for _ in range(5)]

    assert all(t.owned for t in turns)
    assert spacings(turns) == [limit.interval_us] * 4
    assert turns[0].wait == 0.0
    for k, turn in enumerate(turns[1:], start=1):
        assert 0 < turn.wait <= k * 0.02  # its place in line, less the time the calls took


def test_every_rate_is_set_the_margin_below_the_providers(settings: Settings) -> None:
    """With PLP_LIMIT_MARGIN at 2 %, each configured limit paces at 98 % of the provider's rate."""
    configured = settings.model_copy(
        update={**RATES, **TWILIO, **SMTP, **TELEGRAM, "twilio_sms_from": SENDERS, "limit_margin": 0.02}
    )
    configured = configured.model_copy(update={"twilio_voice_from": "+3225550000"})

    rates = {limit.name: limit.per_second for channel in ChannelName for limit in limits_for(configured, channel, "7")}

    assert rates == pytest.approx(
        {"twilio-sms": 29.4, "twilio-voice": 0.98, "telegram": 29.4, "telegram-chat:7": 0.98, "smtp": 9.8}
    )


async def test_departures_are_numbered_in_a_row_so_consecutive_sends_use_consecutive_senders(
    limits: ProviderLimits,
) -> None:
    """Each departure under a busy limit gets the next number: a channel gives consecutive departures to
    consecutive sender numbers, each of which then keeps its own rate."""
    limit = Limit("twilio-sms", 200)

    departures = [await limits.depart([limit]) for _ in range(7)]

    assert [d.number for d in departures if d is not None] == [1, 2, 3, 4, 5, 6, 7]


async def test_concurrent_departures_leave_one_by_one_on_the_limits_grid(runtime: Runtime) -> None:
    """Eight senders on four Redis clients departing at once leave one by one: the k-th no earlier than k
    intervals after the first, less the tenth of an interval a departure may be early."""
    limit = Limit("twilio-sms", 100)
    clients = [runtime.async_redis() for _ in range(4)]
    workers = [ProviderLimits(client, runtime.keys) for client in clients]
    try:
        async with asyncio.timeout(BOUND):
            found = await asyncio.gather(*(w.depart([limit]) for w in workers for _ in range(2)))
    finally:
        for client in clients:
            await client.aclose()

    departures = sorted((d for d in found if d is not None), key=lambda d: d.at)
    assert [d.number for d in departures] == list(range(1, 9))
    first = micros(departures[0].at)
    for k, departure in enumerate(departures):
        assert micros(departure.at) - first >= k * limit.interval_us - limit.interval_us * DEPARTURE_TOLERANCE


async def test_a_send_leaving_late_holds_its_neighbour_back_one_interval(limits: ProviderLimits) -> None:
    """Two consecutive slots; the first send leaves only after the second's slot (a slow event loop): the
    second then leaves one interval after the first's departure (less the departure's tolerance), not at its
    own slot, so the provider never sees them closer than its rate."""
    limit = Limit("telegram", 50)
    _, second = [await limits.take([limit], urgent=True) for _ in range(2)]
    late = await limits.wait_turn([limit], urgent=True)  # the first send's lateness: past both slots
    assert late is not None and late.at > second.at

    leaving = await limits.depart([limit])
    neighbour = await limits.depart([limit])

    assert leaving is not None and neighbour is not None
    assert micros(neighbour.at) - micros(leaving.at) >= limit.interval_us * (1 - DEPARTURE_TOLERANCE)


async def test_a_send_under_several_limits_departs_when_every_one_allows(limits: ProviderLimits) -> None:
    """A Telegram message leaves one bot interval after the bot's last departure and one chat interval after
    that chat's; another chat is held back only by the bot's."""
    bot, chat, other = Limit("telegram", 200), Limit("telegram-chat:4242", 20), Limit("telegram-chat:7", 20)

    first = await limits.depart([bot, chat])
    again = await limits.depart([bot, chat])
    elsewhere = await limits.depart([bot, other])

    assert first is not None and again is not None and elsewhere is not None
    assert micros(again.at) - micros(first.at) >= chat.interval_us * (1 - DEPARTURE_TOLERANCE)
    assert bot.interval_us * (1 - DEPARTURE_TOLERANCE) <= micros(elsewhere.at) - micros(again.at) < chat.interval_us


async def test_an_idle_departure_meter_vanishes_a_second_after_its_interval(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits
) -> None:
    """The departure meter of a chat messaged once expires by itself, counter included."""
    limit = Limit("telegram-chat:99", 20)

    await limits.depart([limit])

    assert 1000 < await redis.pttl(runtime.keys.departures(limit.name)) <= 1050


async def test_acquire_reports_the_wait_for_a_reserved_slot(limits: ProviderLimits) -> None:
    """acquire returns positive delays to urgent callers behind others, never more than their place in line."""
    limit = Limit("twilio-sms", 50)

    delays = [await limits.acquire(limit, urgent=True) for _ in range(4)]

    assert delays[0] == 0.0
    for k in (1, 2, 3):
        assert 0 < delays[k] <= k * 0.02
        assert delays[k] > delays[k - 1]


async def test_non_urgent_caller_is_refused_while_urgent_ones_hold_the_next_slots(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits
) -> None:
    """A non-urgent caller reserves nothing while urgent reservations stand, and gets the slot after them."""
    limit = Limit("telegram", 50)
    urgent = [await limits.take([limit], urgent=True) for _ in range(3)]
    key = runtime.keys.limit(limit.name)
    tat_before = await redis.get(key)

    refused = await limits.take([limit], urgent=False)

    assert not refused.owned
    assert refused.wait > 0
    assert micros(refused.at) == micros(urgent[-1].at) + limit.interval_us
    assert await redis.get(key) == tat_before
    assert await limits.acquire(limit, urgent=False) > 0

    async with asyncio.timeout(BOUND):
        turn = await limits.wait_turn([limit], urgent=False)

    assert turn is not None and turn.owned
    assert micros(turn.at) >= micros(urgent[-1].at) + limit.interval_us


async def test_urgent_goes_first_while_both_wait(limits: ProviderLimits) -> None:
    """An urgent caller arriving while a non-urgent one waits gets a slot ahead of it."""
    limit = Limit("smtp", 50)
    ahead = [await limits.take([limit], urgent=True) for _ in range(2)]
    waiting = asyncio.create_task(limits.wait_turn([limit], urgent=False))
    await asyncio.sleep(0)  # let the non-urgent caller start waiting

    late_urgent = await limits.take([limit], urgent=True)
    async with asyncio.timeout(BOUND):
        non_urgent = await waiting

    assert late_urgent.owned
    assert non_urgent is not None
    assert non_urgent.at > max(t.at for t in [*ahead, late_urgent])


#: Slots added to a full line, so that none comes within reach while a test asks (a slot is 100 ms in these tests).
LONGER = 5


async def fill_the_line(runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits, bot: Limit, *others: str) -> None:
    """Reserve urgent slots under ``bot`` (each under a limit of its own among ``others`` too, if named) until the
    line reaches beyond ``RESERVE_AHEAD``, then ``LONGER`` slots further: urgent callers are refused for a while."""
    taken = 0
    while (await limits.take([bot, *(Limit(f"{o}:{taken}", 1) for o in others)], urgent=True)).owned:
        taken += 1
    assert taken >= RESERVE_AHEAD * bot.per_second
    await redis.incrby(runtime.keys.limit(bot.name), LONGER * bot.interval_us)


async def shorten_the_line(runtime: Runtime, redis: AsyncRedis, limit: Limit, slots: int) -> None:
    """As if the line's extra slots and ``slots`` more had passed: that many slots come within reach."""
    await redis.decrby(runtime.keys.limit(limit.name), (LONGER + slots) * limit.interval_us)


#: The limit of the waiter tests: Twilio's SMS at 10 a second (slots 100 ms apart).
SMS = Limit("twilio-sms", 10)


@pytest.fixture
async def full_line(runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits) -> str:
    """``SMS``'s line of urgent slots full beyond ``RESERVE_AHEAD`` (``fill_the_line``); its waiter's key."""
    await fill_the_line(runtime, redis, limits, SMS)
    return runtime.keys.limit_waiter(SMS.name)


def first_asked(turn: Turn) -> float:
    return turn.at - turn.wait


async def test_the_urgent_caller_refused_longest_ago_gets_the_next_slot_whoever_asks_first(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits, full_line: str
) -> None:
    """Zone B's send refused first keeps its place in line: zone A's newer sends, and non-urgent ones,
    asking before it when a slot comes within reach, are told to ask again one interval later."""
    limit, waiter = SMS, full_line

    zone_b = await limits.take([limit], urgent=True, caller="zone-b")
    zone_a = await limits.take([limit], urgent=True, caller="zone-a")
    assert not zone_b.owned and not zone_a.owned
    assert await redis.hget(waiter, "id") == "zone-b"

    await shorten_the_line(runtime, redis, limit, 2)
    behind = await limits.take([limit], urgent=True, caller="zone-a", since=first_asked(zone_a))
    non_urgent = await limits.take([limit], urgent=False)
    first = await limits.take([limit], urgent=True, caller="zone-b", since=first_asked(zone_b))
    then = await limits.take([limit], urgent=True, caller="zone-a", since=first_asked(zone_a))

    assert not behind.owned
    assert micros(behind.wait) == limit.interval_us
    assert not non_urgent.owned
    assert first.owned and then.owned
    assert micros(then.at) == micros(first.at) + limit.interval_us
    assert not await redis.exists(waiter)


async def test_a_caller_that_first_asked_earlier_takes_the_waiters_place(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits, full_line: str
) -> None:
    """The line's order is when each caller first asked, not when it last did."""
    limit, waiter = SMS, full_line
    newer = await limits.take([limit], urgent=True, caller="newer")
    assert await redis.hget(waiter, "id") == "newer"

    older = await limits.take([limit], urgent=True, caller="older", since=first_asked(newer) - 1)
    assert not older.owned
    assert await redis.hget(waiter, "id") == "older"

    await shorten_the_line(runtime, redis, limit, 1)
    assert not (await limits.take([limit], urgent=True, caller="newer", since=first_asked(newer))).owned
    assert (await limits.take([limit], urgent=True, caller="older", since=first_asked(newer) - 1)).owned


async def test_a_waiter_that_stops_asking_holds_the_line_its_grace_at_most(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits, full_line: str
) -> None:
    """A waiter whose process died goes by itself, ``WAITER_GRACE`` after it should have asked again."""
    limit, waiter = SMS, full_line

    refused = await limits.take([limit], urgent=True, caller="dies")

    ttl_ms = await redis.pttl(waiter)
    assert WAITER_GRACE * 1000 < ttl_ms <= (refused.wait + WAITER_GRACE) * 1000 + 1


async def test_a_waiter_cancelled_lets_the_next_caller_go_at_once(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits, full_line: str
) -> None:
    """A send cancelled while it waits in line (its alert cancelled, its worker stopping) leaves no place held."""
    limit, waiter = SMS, full_line
    refused = asyncio.Event()
    task = asyncio.create_task(limits.wait_turn([limit], urgent=True, waiting=refused.set))
    async with asyncio.timeout(BOUND):
        await refused.wait()
    assert await redis.exists(waiter)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not await redis.exists(waiter)


async def test_a_waiter_held_back_by_its_own_chat_lets_the_bots_line_go(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits
) -> None:
    """Only a caller the provider's own rate holds back waits in line: one whose chat is busy for seconds
    gives up its place, and other chats' sends take the bot's slots meanwhile."""
    bot, busy_chat = Limit("telegram", 10), Limit("telegram-chat:1", 0.2)
    await fill_the_line(runtime, redis, limits, bot, "telegram-chat:filler")
    waiter = runtime.keys.limit_waiter(bot.name)
    refused = await limits.take([bot, busy_chat], urgent=True, caller="busy")
    assert await redis.hget(waiter, "id") == "busy"

    for _ in range(2):  # the chat's next slot is ten seconds away
        await limits.take([busy_chat], urgent=True)
    await shorten_the_line(runtime, redis, bot, 1)
    again = await limits.take([bot, busy_chat], urgent=True, caller="busy", since=first_asked(refused))
    other_chat = await limits.take([bot, Limit("telegram-chat:2", 1)], urgent=True, caller="other")

    assert not again.owned
    assert other_chat.owned
    assert not await redis.exists(waiter)


async def test_concurrent_processes_never_get_slots_closer_than_the_interval(runtime: Runtime) -> None:
    """Four workers with their own Redis clients, urgent and not, never share or crowd a slot."""
    limit = Limit("twilio-sms", 200)
    clients = [runtime.async_redis() for _ in range(4)]
    workers = [ProviderLimits(client, runtime.keys) for client in clients]

    async def sender(worker: ProviderLimits, *, urgent: bool) -> list[Turn]:
        turns = []
        for _ in range(6):
            turn = await worker.wait_turn([limit], urgent=urgent)
            assert turn is not None
            turns.append(turn)
        return turns

    try:
        async with asyncio.timeout(BOUND):
            results = await asyncio.gather(
                *(sender(w, urgent=urgent) for w in workers for urgent in (True, False, False))
            )
    finally:
        for client in clients:
            await client.aclose()

    turns = [t for turns in results for t in turns]
    assert len(turns) == 72
    assert min(spacings(turns)) >= limit.interval_us


async def test_a_send_under_several_limits_gets_one_slot_that_suits_all(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits
) -> None:
    """The bot-wide and per-chat limits give one common slot; a non-urgent caller holds neither while refused."""
    bot, chat = Limit("telegram", 200), Limit("telegram-chat:4242", 50)
    first = await limits.take([bot, chat], urgent=True)
    bot_tat = await redis.get(runtime.keys.limit(bot.name))

    refused = await limits.take([bot, chat], urgent=False)
    assert not refused.owned
    assert await redis.get(runtime.keys.limit(bot.name)) == bot_tat

    second = await limits.take([bot, chat], urgent=True)
    assert micros(second.at) == micros(first.at) + chat.interval_us
    other_chat = await limits.take([bot, Limit("telegram-chat:7", 50)], urgent=True)
    assert micros(other_chat.at) == micros(second.at) + bot.interval_us


async def test_an_idle_limit_key_expires(runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits) -> None:
    """The key expires when its last reserved slot has passed: Redis removes an idle limit by itself."""
    limit = Limit("telegram-chat:99", 20)
    key = runtime.keys.limit(limit.name)
    for _ in range(3):
        await limits.take([limit], urgent=True)

    assert 100 < await redis.pttl(key) <= 150  # three slots of 50 ms reserved from about now


async def test_a_burst_lets_that_many_callers_go_at_once(limits: ProviderLimits) -> None:
    """With a burst of 3, three non-urgent callers may send now; the fourth waits about one interval."""
    limit = Limit("smtp", 50, burst=3)

    turns = [await limits.take([limit], urgent=False) for _ in range(4)]

    assert [t.owned for t in turns] == [True, True, True, False]
    assert [t.wait for t in turns[:3]] == [0.0, 0.0, 0.0]
    assert 0 < turns[3].wait <= 0.02


async def test_take_needs_a_limit(limits: ProviderLimits) -> None:
    """Asking for a slot under no limit at all is a caller's error; wait_turn lets such a send go at once."""
    with pytest.raises(ValueError):
        await limits.take([], urgent=True)
    assert await limits.wait_turn([], urgent=False) is None
    assert await limits.depart([]) is None


def test_a_late_write_departs_again_under_the_providers_own_rate_not_a_recipients(settings: Settings) -> None:
    """A request written late departs again (``channels.base.departing``) under the bot's or the business number's
    rate only: under a chat's (1 s) or a WhatsApp user's (6 s) it would wait that long again before its write."""
    configured = settings.model_copy(
        update={**RATES, **TELEGRAM, "whatsapp_token": SecretStr("wa"), "whatsapp_phone_id": "1001"}
    )
    telegram = limits_for(configured, ChannelName.TELEGRAM, "4242")
    whatsapp = limits_for(configured, ChannelName("whatsapp"), "+32470123456")
    assert [limit.name for limit in telegram] == ["telegram", "telegram-chat:4242"]
    assert [limit.name for limit in shared_rate(telegram)] == ["telegram"]
    assert [limit.name for limit in shared_rate(whatsapp)] == ["whatsapp"]
    assert shared_rate(limits_for(configured, ChannelName.EMAIL, "ann@example.org")) == []  # no relay configured


async def test_a_refused_caller_asks_again_within_the_providers_interval_not_a_recipients(
    runtime: Runtime, redis: AsyncRedis, limits: ProviderLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WhatsApp send waits in line under the business number's 10/s and its user's one message in 6 s: it asks
    again within a tenth of a second of the moment it was told, never seconds later (as the waiter, the one the
    next turn is kept for, it would hold every other send back as long)."""
    number, user = Limit("whatsapp", 10), Limit("whatsapp-user:32470000001", 1 / 6)
    await fill_the_line(runtime, redis, limits, number, "whatsapp-user:filler")
    spreads: list[float] = []

    def uniform(low: float, high: float) -> float:
        spreads.append(high - low)
        return 0.0

    monkeypatch.setattr("dispatcher.storage.limits.random.uniform", uniform)
    async with asyncio.timeout(BOUND):
        turn = await limits.wait_turn([number, user], urgent=True)

    assert turn is not None and turn.owned
    assert spreads and max(spreads) == number.interval_us / 1_000_000
