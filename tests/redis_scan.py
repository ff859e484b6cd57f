"""Reading back everything a Redis database holds, to check what is (not) in it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class Stored:
    """One key and everything in it, as text: its name, and its members, fields, values and scores."""

    key: str
    kind: str
    texts: tuple[str, ...]

    def contains(self, needle: str) -> bool:
        return needle in self.key or any(needle in text for text in self.texts)


def _text(value: bytes | str | float | int) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def everything(url: str) -> Iterator[Stored]:
    """Every key of the database at ``url`` (SCAN), with all it holds: strings, hashes, lists, sets,
    sorted sets (members and scores) and streams (ids, fields and values)."""
    client = redis.Redis.from_url(url)
    try:
        for raw_key in client.scan_iter(count=1000):
            kind = _text(client.type(raw_key))
            texts: list[bytes | str | float | int] = []
            if kind == "string":
                texts.append(client.get(raw_key) or b"")
            elif kind == "hash":
                for field, value in client.hgetall(raw_key).items():
                    texts += [field, value]
            elif kind == "list":
                texts += client.lrange(raw_key, 0, -1)
            elif kind == "set":
                texts += client.smembers(raw_key)
            elif kind == "zset":
                for member, score in client.zrange(raw_key, 0, -1, withscores=True):
                    texts += [member, score]
            elif kind == "stream":
                for entry_id, fields in client.xrange(raw_key):
                    texts.append(entry_id)
                    for field, value in fields.items():
                        texts += [field, value]
            elif kind == "none":  # expired between SCAN and TYPE (rate limits, webhook marks)
                continue
            else:
                raise AssertionError(f"{_text(raw_key)}: a {kind} the scan does not read")
            yield Stored(key=_text(raw_key), kind=kind, texts=tuple(_text(t) for t in texts))
    finally:
        client.close()
