"""The test's side of the hosts suite: a client on the hosts' network.

It calls the web hosts' API over HTTP (as the police, an admin, a member following a link),
waits on Redis for the alerts' events, reads the delivery records there, and asks the
vendors' host what the providers received.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from dispatcher.storage.store import split_delivery_id
from tests.hosts.cluster import Cluster
from tests.support import member_rows, wait_for_alert

#: Statuses a delivery ends in, or is settled in (handed to the provider).
SETTLED = frozenset({"sent", "delivered", "failed", "expired", "cancelled"})
GONE_OUT = frozenset({"sent", "delivered"})


def charter(*channels: str) -> dict[str, Any]:
    """A charter sending both classes of alerts on ``channels``, relayed at once, no quiet hours."""
    plan = {"channels": list(channels), "mode": "all", "ttl_seconds": 3600}
    return {"urgent": plan, "non_urgent": plan, "relay": "auto"}


@dataclass(frozen=True)
class Sent:
    """One message a provider took (a ledger entry on the vendors' host), traced back to its delivery."""

    alert_id: str
    channel: str
    member_id: str
    received_at: float
    callbacks: tuple[tuple[str, int | None], ...]  # status callbacks posted: (URL, HTTP status answered)
    status_callback: str = ""  # SMS: the status callback URL the sending worker gave (its PLP_PUBLIC_BASE_URL's)

    @property
    def ref(self) -> str:
        return f"{self.channel}:{self.member_id}"


class Client:
    """A client of the cluster for one test (its own HTTP session, on the test's event loop)."""

    def __init__(self, cluster: Cluster, http: aiohttp.ClientSession) -> None:
        self.cluster, self.http = cluster, http

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.cluster.tokens[who]}"}

    async def call(
        self, method: str, url: str, *, expect: int, who: str | None = None, **options: Any
    ) -> tuple[str, str]:
        """Make the request; check the status; return the answer's content type and text."""
        headers = self.auth(who) if who else {}
        async with self.http.request(method, url, headers=headers, **options) as response:
            text = await response.text()
            assert response.status == expect, f"{method} {url}: {response.status} {text[:500]}"
            return response.content_type, text

    async def api(self, web: str, method: str, path: str, body: Any = None, *, who: str, expect: int) -> Any:
        """Call the API of web host ``web`` (``"web-1"``, ``"web-2"``) as ``who``; the decoded JSON answer."""
        url = self.cluster.web[web] + path
        _, text = await self.call(method, url, expect=expect, who=who, json=body)
        return _json(text)

    # -- the neighbourhood -------------------------------------------------------------------

    async def plp(self, web: str, name: str, *channels: str) -> str:
        body = {"name": name, "commune": "Ixelles", "police_zone": "5340", "charter": charter(*channels)}
        return str((await self.api(web, "POST", "/v1/plps", body, who="admin", expect=201))["id"])

    async def members(self, web: str, plp_id: str, count: int, *, start: int) -> list[dict[str, Any]]:
        """Import ``count`` members (phone and e-mail each), numbered from ``start``; return them with their ids."""
        rows = member_rows(count, start=start)
        path = f"/v1/plps/{plp_id}/members/import"
        report = await self.api(web, "POST", path, {"members": rows}, who="admin", expect=200)
        assert not report["rejected"], report["rejected"][:3]
        ids = {item["row"]: item["member_id"] for item in report["imported"]}
        return [{**row, "id": ids[i]} for i, row in enumerate(rows)]

    async def alert(self, web: str, plp_ids: list[str], text: str) -> str:
        """Post an urgent alert to web host ``web`` as the police (202); return its id."""
        body = {"urgency": "urgent", "category": "burglary", "plp_ids": plp_ids, "texts": {"fr": text}}
        return str((await self.api(web, "POST", "/v1/alerts", body, who="police", expect=202))["id"])

    async def deliveries(self, web: str, alert_id: str) -> dict[str, dict[str, Any]]:
        """Every delivery of the alert as web host ``web``'s API shows it, by ref (``<channel>:<member>``)."""
        found: dict[str, dict[str, Any]] = {}
        query = "?limit=500"
        while True:
            page = await self.api(web, "GET", f"/v1/alerts/{alert_id}/deliveries{query}", who="admin", expect=200)
            found |= {f"{d['channel']}:{d['member_id']}": d for d in page["items"]}
            if page["next_cursor"] is None:
                return found
            query = f"?limit=500&cursor={page['next_cursor']}"

    # -- Redis -------------------------------------------------------------------------------

    async def finished(self, alert_id: str, *, timeout: float = 60) -> str:
        """Wait on the alert's events in Redis until it is over; return its final status."""
        try:
            return await wait_for_alert(self.cluster.runtime, alert_id, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"alert {alert_id} not over after {timeout} s: {self.counts(alert_id)}") from None

    def records(self, alert_id: str) -> dict[str, dict[str, str]]:
        """Every delivery hash of the alert in Redis, by ref."""
        keys, redis = self.cluster.runtime.keys, self.cluster.runtime.sync_redis
        refs = redis.zrange(keys.alert_deliveries(alert_id), 0, -1)
        with redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hgetall(keys.delivery(alert_id, ref))
            return dict(zip(refs, pipe.execute(), strict=True))  # type: ignore[arg-type]

    def counts(self, alert_id: str) -> dict[str, int]:
        raw = self.cluster.runtime.sync_redis.hgetall(self.cluster.runtime.keys.alert_counts(alert_id))
        return {k: int(v) for k, v in raw.items()}  # type: ignore[union-attr]

    def in_flight_claims(self, alert_id: str) -> int:
        """Deliveries claimed by a worker and not recorded yet: the sends a crash now leaves uncertain."""
        keys, redis = self.cluster.runtime.keys, self.cluster.runtime.sync_redis
        refs = redis.zrange(keys.alert_deliveries_in(alert_id, "sending"), 0, -1)
        with redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hget(keys.delivery(alert_id, ref), "phase")
            return sum(1 for phase in pipe.execute() if phase == "in_flight")

    # -- the vendors' host -------------------------------------------------------------------

    async def vendors(self, method: str, path: str, **query: str) -> Any:
        async with self.http.request(method, self.cluster.vendors["control"] + path, params=query) as response:
            text = await response.text()
            assert response.status == 200, f"the vendors' host: {path}: {response.status} {text}"
            return _json(text)

    async def sent(self, alert_ids: list[str]) -> list[Sent]:
        """Every SMS and e-mail of the alerts the providers took."""
        ledger = await self.vendors("GET", "/ledger")
        found = []
        for sms in ledger["sms"]:
            [delivery] = parse_qs(urlsplit(sms["callback"]).query)["d"]
            alert_id, channel, member_id = split_delivery_id(delivery)
            callbacks = tuple((url, status) for url, status in sms["callbacks"])
            found.append(Sent(alert_id, channel, member_id, sms["received_at"], callbacks, sms["callback"]))
        for mail in ledger["email"]:
            alert_id, channel, member_id = mail["message_id"].strip("<>").partition("@")[0].split(".")
            found.append(Sent(alert_id, channel, member_id, mail["received_at"], ()))
        return [s for s in found if s.alert_id in alert_ids]

    async def taken(self) -> dict[str, int]:
        """``taken``: messages the providers took so far; ``in_flight``: requests they have not answered yet."""
        return dict(await self.vendors("GET", "/count"))

    async def callbacks_done(self) -> None:
        """Return once every status callback the Twilio simulator started has been posted and answered."""
        await self.vendors("POST", "/callbacks-done", timeout="30")

    async def link_in_mail(self, address: str, route: str) -> str:
        """The first link to ``route`` (e.g. ``/v1/r/``) in the one e-mail received for ``address``."""
        [text] = await self.vendors("GET", "/mail", to=address)
        found = re.search(rf"https?://\S+{re.escape(route)}\S+", text)
        assert found is not None, f"no {route} link in the mail to {address}"
        return found.group(0)


def duplicates(sent: list[Sent]) -> Counter[tuple[str, str]]:
    """(alert, ref) of the deliveries that reached a provider more than once, with the number of extra copies."""
    seen = Counter((s.alert_id, s.ref) for s in sent)
    return Counter({key: n - 1 for key, n in seen.items() if n > 1})


def _json(text: str) -> Any:
    return json.loads(text) if text else None
