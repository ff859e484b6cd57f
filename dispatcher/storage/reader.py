"""The ``Store``'s reads for the synchronous side: the RQ jobs and the clock, on the runtime's decoding client.

The same records as the ``Store`` reads with asyncio, from the same keys, decoded the same way. The
synchronous side's writes go through transactions that also enqueue work or run the scripts
(``dispatcher.pipeline``), so this side of the ``Store`` only reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import redis

from dispatcher.core.models import Alert, Member, Plp, Relay
from dispatcher.core.places import Sector
from dispatcher.storage.keys import Keys


class Reader:
    """Alerts, PLPs, members, relays and opt-outs, read synchronously (``Runtime.reader``)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client  # a decoding client: values come back as ``str``
        self.keys = keys

    def get_alert(self, alert_id: str) -> Alert | None:
        raw = cast(str | None, self.redis.get(self.keys.alert(alert_id)))
        return Alert.model_validate_json(raw) if raw else None

    def get_alerts(self, alert_ids: Iterable[str]) -> dict[str, Alert | None]:
        """Each alert by id (None if there is none), in one round trip."""
        ids = list(alert_ids)
        raws = cast(list[str | None], self.redis.mget([self.keys.alert(i) for i in ids])) if ids else []
        return {i: Alert.model_validate_json(raw) if raw else None for i, raw in zip(ids, raws, strict=True)}

    def get_plp(self, plp_id: str) -> Plp | None:
        return self.get_plps([plp_id])[plp_id]

    def get_plps(self, plp_ids: Iterable[str]) -> dict[str, Plp | None]:
        """Each PLP by id (None if there is none), in one round trip."""
        ids = list(plp_ids)
        raws = cast(list[str | None], self.redis.mget([self.keys.plp(i) for i in ids])) if ids else []
        return {i: Plp.model_validate_json(raw) if raw else None for i, raw in zip(ids, raws, strict=True)}

    def plp_member_ids(self, plp_id: str, *, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` ids of the PLP's members, in order, from the first after ``after`` (None: the first)."""
        low = f"({after}" if after is not None else "-"
        return cast(
            list[str], self.redis.zrange(self.keys.plp_members(plp_id), low, "+", bylex=True, offset=0, num=limit)
        )

    def get_members(self, member_ids: list[str]) -> list[Member | None]:
        """The members in the order of ``member_ids`` (None for one who is gone), in one round trip."""
        raws = cast(list[str | None], self.redis.mget([self.keys.member(i) for i in member_ids])) if member_ids else []
        return [Member.model_validate_json(raw) if raw else None for raw in raws]

    def opted_out(self, member_ids: list[str]) -> list[bool]:
        """Whether each member opted out (their id stays in the opt-outs, even once erased)."""
        if not member_ids:
            return []
        return [bool(out) for out in cast(list[int], self.redis.smismember(self.keys.optouts(), member_ids))]

    def get_sectors(self, plp_id: str) -> list[Sector]:
        """The PLP's sectors (any order)."""
        raws = cast(dict[str, str], self.redis.hgetall(self.keys.plp_sectors(plp_id)))
        return [Sector.model_validate_json(raw) for raw in raws.values()]

    def get_relay(self, alert_id: str, plp_id: str) -> Relay | None:
        """The relay decision of one PLP for an alert."""
        raw = cast(str | None, self.redis.hget(self.keys.alert_relays(alert_id), plp_id))
        return Relay.model_validate_json(raw) if raw else None
