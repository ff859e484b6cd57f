"""A load generator for webhook intake: ``python -m tests.bench.loadgen REQUESTS.json --concurrency N``.

Reads prepared requests (``[[url, form, signature], ...]``, each a list of the callbacks of
one message, posted in order), posts them with ``N`` lanes in flight over keep-alive
connections, and prints ``{"posted": n, "seconds": s, "statuses": {...}}``. Signatures are
computed beforehand, so the generator spends its time posting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp


async def post_all(messages: list[list[list[Any]]], concurrency: int) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    queue = iter(messages)

    async def lane(session: aiohttp.ClientSession) -> None:
        for callbacks in queue:
            for url, form, signature in callbacks:
                async with session.post(url, data=form, headers={"X-Twilio-Signature": signature}) as response:
                    await response.read()
                    statuses[response.status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(lane(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"posted": sum(statuses.values()), "seconds": seconds, "statuses": {str(k): v for k, v in statuses.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requests", type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    messages = json.loads(args.requests.read_text(encoding="utf-8"))
    print(json.dumps(asyncio.run(post_all(messages, args.concurrency))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
