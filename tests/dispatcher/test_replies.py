"""Answers to members: queued by the webhook, sent by a worker in their turn, retried when refused,
sent again by the clock's timer if their job is lost, never twice by two runs.

Telegram is the simulator on loopback, driven by python-telegram-bot; Redis is real.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr

from config import Settings
from dispatcher.core.models import ChannelName, Language
from dispatcher.pipeline import clock, jobs, replies
from dispatcher.storage.runtime import Runtime
from tests.follow_ups import make_due, queued, timers
from tests.simulators.telegram import TelegramSimulator
from tests.support import send_reply, until

# python-telegram-bot 22 warns, when it builds a RetryAfter (on every 429), that retry_after will
# become a timedelta; the channel reads both forms.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2. In a future major version attribute .retry_after."
    ":telegram.warnings.PTBDeprecationWarning"
)

CHAT = 424242
TOKEN = "777:reply-token"


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramSimulator]:
    async with TelegramSimulator(token=TOKEN) as simulator:
        yield simulator


@pytest.fixture
def bot_runtime(settings: Settings, telegram: TelegramSimulator) -> Iterator[Runtime]:
    configured = settings.model_copy(
        update={"telegram_bot_token": SecretStr(TOKEN), "telegram_api_base_url": telegram.base_url}
    )
    rt = Runtime.from_settings(configured)
    rt.rq_connection.flushdb()
    yield rt
    rt.rq_connection.flushdb()
    rt.close()


def _queue(rt: Runtime, text: str = "Merci, c'est noté.") -> str:
    return replies.queue(rt, ChannelName.TELEGRAM, str(CHAT), text, Language.FR)


def _job_ids(rt: Runtime, reply_id: str) -> list[tuple[str, tuple[object, ...]]]:
    return [job for job in queued(rt.urgent_queue) if job == (jobs.SEND_REPLY, (reply_id,))]


async def test_a_queued_answer_is_sent_once_by_its_job_and_leaves_nothing_behind(
    bot_runtime: Runtime, telegram: TelegramSimulator
) -> None:
    """Queuing enqueues the job and a timer one lease later; the job sends the text to the chat, then the
    answer and its timer are gone."""
    reply_id = _queue(bot_runtime)
    assert _job_ids(bot_runtime, reply_id)
    [(spec, _)] = timers(bot_runtime)
    assert spec == {"job": jobs.SEND_REPLY, "args": [reply_id], "urgent": True}

    assert await send_reply(bot_runtime, reply_id) == "sent"

    [call] = telegram.calls("sendMessage")
    assert (int(call.params["chat_id"]), call.params["text"]) == (CHAT, "Merci, c'est noté.")
    assert timers(bot_runtime) == []
    assert not bot_runtime.sync_redis.exists(bot_runtime.keys.reply_out(reply_id))
    assert await send_reply(bot_runtime, reply_id) == "not mine"
    assert len(telegram.calls("sendMessage")) == 1


async def test_an_answer_refused_for_the_rate_is_sent_again_after_retry_after(
    bot_runtime: Runtime, telegram: TelegramSimulator
) -> None:
    """A 429 with retry_after 3 moves the answer's timer 3 s ahead and holds the answer until then; the clock
    then enqueues it again, and it goes. (Three seconds, not one: a loaded host may take one between two runs.)"""
    telegram.throttle_once[CHAT] = 3
    reply_id = _queue(bot_runtime)

    assert await send_reply(bot_runtime, reply_id) == "retrying"
    [(_, due)] = timers(bot_runtime)
    assert due >= time.time() + 2
    assert await send_reply(bot_runtime, reply_id) == "not mine"  # held until then: no other run sends it

    await until(lambda: clock.tick(bot_runtime).timers, timeout=10, what="the retry's timer")
    assert _job_ids(bot_runtime, reply_id)
    assert await send_reply(bot_runtime, reply_id) == "sent"
    assert [c.status for c in telegram.calls("sendMessage")] == [429, 200]


async def test_an_answer_whose_job_is_lost_is_sent_by_the_clock_one_lease_later(
    bot_runtime: Runtime, telegram: TelegramSimulator
) -> None:
    """The worker that took the job died before sending: the timer set with the answer enqueues it again."""
    reply_id = _queue(bot_runtime)
    bot_runtime.urgent_queue.empty()  # the job is gone with its worker (answers wait in the lane's own queue)

    make_due(bot_runtime, jobs.SEND_REPLY)
    clock.tick(bot_runtime)

    assert _job_ids(bot_runtime, reply_id)
    assert await send_reply(bot_runtime, reply_id) == "sent"
    assert len(telegram.calls("sendMessage")) == 1


async def test_an_answer_to_a_chat_that_blocked_the_bot_is_dropped_not_retried(
    bot_runtime: Runtime, telegram: TelegramSimulator
) -> None:
    """A permanent refusal (403, blocked) ends the answer: no timer is left to try again."""
    telegram.blocked.add(CHAT)
    reply_id = _queue(bot_runtime)

    assert await send_reply(bot_runtime, reply_id) == "dropped"

    assert timers(bot_runtime) == []
    assert not bot_runtime.sync_redis.exists(bot_runtime.keys.reply_out(reply_id))


async def test_an_answer_takes_its_turn_under_the_chats_limit(
    bot_runtime: Runtime, telegram: TelegramSimulator
) -> None:
    """Three answers to one chat at one a second leave one second apart, as the chat's limit wants."""
    for text in ("un", "deux", "trois"):
        assert await send_reply(bot_runtime, _queue(bot_runtime, text)) == "sent"

    arrivals = [c.received_at for c in telegram.calls("sendMessage")]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert [c.params["text"] for c in telegram.calls("sendMessage")] == ["un", "deux", "trois"]
    assert min(gaps) >= 0.95  # the chat's interval (1 s, paced 1 % slower), less the simulator's own jitter
