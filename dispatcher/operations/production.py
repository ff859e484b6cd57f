"""Production mode's refusals that need the charters: no charter names a channel nothing can send here.

Under ``PLP_ENV=production`` a channel whose vendor has no credentials is served by the outbox
only where ``PLP_OUTBOX_CHANNELS`` allows it; any other is unsendable (``channels.unsendable``).
A charter naming one is refused when it is saved (a 422 naming the field, the channel and the
variables to set), and ``plp web``, ``plp worker`` and ``plp clock`` refuse to start while a
stored charter names one, listing every PLP and variable at fault. In development nothing is
unsendable: the outbox stands in for every channel.

The settings' own refusals (``REDIS_URL``, ``PLP_SECRET_KEY``, absolute folders) are
``Settings.production_faults``: they need no Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatcher.core.models import ChannelName, Charter, MessageClass

if TYPE_CHECKING:
    from dispatcher.storage.store import Store


@dataclass(frozen=True, slots=True)
class CharterFault:
    """One place of a charter naming a channel that cannot be sent here."""

    field: str  # inside the charter: urgent.channels[0], urgent.escalate_to
    channel: ChannelName
    to_enable: str  # the variables to set, or the outbox to allow

    @property
    def reason(self) -> str:
        return f"{self.channel.value} cannot be sent by this service: {self.to_enable}"


def charter_faults(charter: Charter, unsendable: Mapping[ChannelName, str]) -> list[CharterFault]:
    """Each channel of ``charter``'s plans (and each escalation it sets) that is in ``unsendable``, in charter order."""
    faults = []
    for message_class in MessageClass:
        plan = charter.plan_of(message_class)
        for index, channel in enumerate(plan.channels):
            if channel in unsendable:
                faults.append(CharterFault(f"{message_class.value}.channels[{index}]", channel, unsendable[channel]))
        if plan.escalate_after_seconds is not None and plan.escalate_to in unsendable:
            channel = plan.escalate_to
            faults.append(CharterFault(f"{message_class.value}.escalate_to", channel, unsendable[channel]))
    return faults


async def unsendable_charters(store: Store, unsendable: Mapping[ChannelName, str]) -> list[str]:
    """Every stored PLP whose charter names an unsendable channel, then what enables each such channel: sentences."""
    if not unsendable:
        return []
    plps = await store.get_plps(await store.all_plp_ids())
    sentences: list[str] = []
    named: set[ChannelName] = set()
    for plp in sorted((p for p in plps.values() if p is not None), key=lambda p: p.id):
        if faults := charter_faults(plp.charter, unsendable):
            places = ", ".join(f"{fault.field} names {fault.channel.value}" for fault in faults)
            sentences.append(f"the charter of PLP {plp.id!r} ({plp.name}): {places}")
            named.update(fault.channel for fault in faults)
    return sentences + [f"{channel.value}: {unsendable[channel]}" for channel in ChannelName if channel in named]
