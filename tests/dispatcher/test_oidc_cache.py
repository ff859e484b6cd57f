"""The identity provider's documents kept in memory (``dispatcher.access.oidc_cache``); the sign-ins that use
them are in ``tests/api/test_oidc.py``, against a provider on loopback."""

from __future__ import annotations

import asyncio

import pytest

from dispatcher.access.oidc_cache import Fetched, ProviderCache, max_age

URL = "https://idp.example/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("public", None),
        ("max-age=300", 300),
        ("public, max-age=300, must-revalidate", 300),
        ('max-age="60"', 60),
        ("Max-Age=60", 60),
        ("max-age=-5", None),
        ("max-age=soon", None),
        ("no-store", 0),
        ("max-age=300, no-cache", 0),
    ],
)
def test_a_response_s_cache_control_says_how_long_it_may_be_kept(header: str | None, seconds: int | None) -> None:
    """max-age in seconds; no-store and no-cache keep nothing; anything else says nothing."""
    assert max_age(header) == seconds


async def test_readers_of_a_stale_document_wait_for_one_read() -> None:
    """Concurrent sign-ins that find nothing kept cause one read of the provider, not one each."""
    reads, everyone_asked = 0, asyncio.Event()

    async def fetch() -> Fetched:
        nonlocal reads
        reads += 1
        async with asyncio.timeout(5):
            await everyone_asked.wait()  # the read is under way while the others ask
        return Fetched({"issuer": "https://idp.example"}, None)

    cache = ProviderCache()
    readers = [asyncio.ensure_future(cache.read(URL, fetch)) for _ in range(5)]
    asyncio.get_running_loop().call_soon(everyone_asked.set)  # after each reader's first step
    documents = await asyncio.gather(*readers)
    assert reads == 1 and all(d == {"issuer": "https://idp.example"} for d in documents)


async def test_a_failed_read_keeps_nothing_and_the_next_one_asks_again() -> None:
    """A read that raises is the caller's failure; nothing is kept, so the next read tries the provider again."""
    answers: list[Fetched | Exception] = [ConnectionError("unreachable"), Fetched({"keys": []}, None)]

    async def fetch() -> Fetched:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = ProviderCache()
    with pytest.raises(ConnectionError):
        await cache.read(URL, fetch)
    assert await cache.read(URL, fetch) == {"keys": []}


def test_a_renewal_is_allowed_once_per_window() -> None:
    """renewable says yes once, then no until renew_seconds have passed."""
    now = [0.0]
    cache = ProviderCache(clock=lambda: now[0], renew_seconds=60)
    assert [cache.renewable(URL), cache.renewable(URL)] == [True, False]
    now[0] = 59.0
    assert cache.renewable(URL) is False
    now[0] = 60.0
    assert cache.renewable(URL) is True
    assert cache.renewable("https://other.example/jwks") is True  # per document
