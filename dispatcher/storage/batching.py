"""Script calls made together, sent to Redis together.

A batch sends its deliveries concurrently, so their claims and records come in bursts: dozens in
the same turn of the event loop. Sent one by one, each pays a round trip and redis-py's per-call
work (a connection from the pool, a write, a wake-up for the reply). ``ScriptCalls`` gathers the
calls made in one turn of the loop and sends them in one pipeline (not a transaction: each script
is atomic on its own, as when sent alone), and hands each caller its own answer or error.

A script the server does not hold (it restarted, or was flushed) answers ``NOSCRIPT`` without
running; only those calls are sent again, each through its script object, which loads it. A
connection lost mid-pipeline fails every call of it, as it would have failed each one alone: the
callers' own recovery (leases, the clock) is unchanged. A call whose caller was cancelled before
the pipeline left is not sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError


@dataclass
class _Call:
    script: Any  # redis.commands.core.AsyncScript
    keys: Sequence[Any]
    args: Sequence[Any]
    answer: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class ScriptCalls:
    """Runs scripts on ``redis``, the calls of one turn of the event loop in one pipeline."""

    def __init__(self, redis: AsyncRedis) -> None:
        self.redis = redis
        self._waiting: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, script: Any, *, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run ``script`` (registered with ``register_script``) with ``keys`` and ``args``; return its answer."""
        call = _Call(script, keys, args)
        self._waiting.append(call)
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._send)
        return await call.answer

    def _send(self) -> None:
        calls = [c for c in self._waiting if not c.answer.done()]  # a cancelled caller's call is not sent
        self._waiting = []
        if calls:
            task = asyncio.create_task(self._run(calls))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _run(self, calls: list[_Call]) -> None:
        try:
            if len(calls) == 1:
                await self._one(calls[0])
            else:
                await self._many(calls)
        finally:  # the sender itself cancelled (the worker stops): so are its callers
            for call in calls:
                if not call.answer.done():
                    call.answer.cancel()

    async def _many(self, calls: list[_Call]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        try:
            answers = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for call in calls:
                _settle(call, error=exc)
            return
        for call, answer in zip(calls, answers, strict=True):
            if isinstance(answer, NoScriptError):
                await self._one(call)  # it did not run: its script object loads it and runs it
            elif isinstance(answer, Exception):
                _settle(call, error=answer)
            else:
                _settle(call, answer=answer)

    async def _one(self, call: _Call) -> None:
        try:
            answer = await call.script(keys=list(call.keys), args=list(call.args))
        except Exception as exc:
            _settle(call, error=exc)
        else:
            _settle(call, answer=answer)


def _settle(call: _Call, *, answer: Any = None, error: BaseException | None = None) -> None:
    if call.answer.done():  # its caller was cancelled meanwhile
        return
    if error is not None:
        call.answer.set_exception(error)
    else:
        call.answer.set_result(answer)
