"""Script calls made in the same turn of the event loop go to Redis in one pipeline, and each caller gets its own
answer (``dispatcher.storage.batching``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from dispatcher.storage.batching import ScriptCalls

# KEYS[1]: a counter; ARGV[1]: how much to add, or "fail" to answer an error without adding.
ADD = """
if ARGV[1] == 'fail' then return redis.error_reply('refused ' .. KEYS[1]) end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""


@pytest.fixture
async def named(redis_url: str) -> AsyncIterator[tuple[AsyncRedis, str]]:
    """A client whose every connection carries a name of its own, so the server can count them."""
    name = f"batching-{uuid.uuid4().hex[:8]}"
    client = AsyncRedis.from_url(redis_url, client_name=name, decode_responses=True)
    yield client, name
    await client.delete(*[f"plptest:batching:{n}" for n in range(60)])
    await client.aclose()


async def _connections(client: AsyncRedis, name: str) -> int:
    return sum(1 for c in await client.client_list() if c.get("name") == name)


async def test_calls_made_together_go_in_one_pipeline_and_each_gets_its_own_answer(
    named: tuple[AsyncRedis, str],
) -> None:
    """Fifty calls made in the same turn ride one connection (alone, concurrent calls take one each), and each
    caller gets the answer of its own call."""
    client, name = named
    script = client.register_script(ADD)
    calls = ScriptCalls(client)
    answers = await asyncio.gather(*(calls(script, keys=[f"plptest:batching:{n}"], args=[n]) for n in range(50)))
    assert answers == list(range(50))
    assert await _connections(client, name) == 1
    await asyncio.gather(*(script(keys=[f"plptest:batching:{n}"], args=[1]) for n in range(50)))
    assert await _connections(client, name) > 1  # the same calls one by one, concurrently


async def test_an_error_reaches_only_its_own_caller(named: tuple[AsyncRedis, str]) -> None:
    """A script answering an error fails its caller alone; its neighbours in the pipeline get their answers."""
    client, _ = named
    script = client.register_script(ADD)
    calls = ScriptCalls(client)
    outcomes = await asyncio.gather(
        calls(script, keys=["plptest:batching:1"], args=[5]),
        calls(script, keys=["plptest:batching:2"], args=["fail"]),
        calls(script, keys=["plptest:batching:3"], args=[7]),
        return_exceptions=True,
    )
    assert outcomes[0] == 5 and outcomes[2] == 7
    assert isinstance(outcomes[1], ResponseError) and "refused plptest:batching:2" in str(outcomes[1])


async def test_a_script_the_server_lost_is_loaded_and_each_call_runs_once(named: tuple[AsyncRedis, str]) -> None:
    """After the server forgot its scripts (a restart, a flush), each call of the next pipeline answers NOSCRIPT
    without running; each is run again, once: the counter adds up to exactly the calls made."""
    client, _ = named
    script = client.register_script(ADD)
    calls = ScriptCalls(client)
    assert await calls(script, keys=["plptest:batching:0"], args=[1]) == 1
    await client.script_flush()
    await asyncio.gather(*(calls(script, keys=["plptest:batching:0"], args=[1]) for _ in range(10)))
    assert await client.get("plptest:batching:0") == "11"


async def test_a_call_whose_caller_was_cancelled_before_it_left_is_not_sent(named: tuple[AsyncRedis, str]) -> None:
    """A caller cancelled in the turn it called: its call never reaches the server; the others' do."""
    client, _ = named
    script = client.register_script(ADD)
    calls = ScriptCalls(client)
    kept = asyncio.ensure_future(calls(script, keys=["plptest:batching:1"], args=[1]))
    dropped = asyncio.ensure_future(calls(script, keys=["plptest:batching:2"], args=[1]))
    # runs right after both callers have queued their calls, before the pipeline leaves (scheduled during them)
    asyncio.get_running_loop().call_soon(dropped.cancel)
    assert await kept == 1
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert await client.get("plptest:batching:2") is None


async def test_a_lost_connection_fails_every_call_of_the_pipeline(named: tuple[AsyncRedis, str]) -> None:
    """Redis out of reach: every caller gets the connection error, as each would have alone; none waits forever."""
    client, _ = named
    script = client.register_script(ADD)
    away = AsyncRedis(host="127.0.0.1", port=1, socket_connect_timeout=1, decode_responses=True)
    calls = ScriptCalls(away)
    outcomes = await asyncio.gather(
        *(calls(script, keys=[f"plptest:batching:{n}"], args=[1]) for n in range(3)), return_exceptions=True
    )
    await away.aclose()
    assert all(isinstance(o, RedisConnectionError) for o in outcomes), outcomes
