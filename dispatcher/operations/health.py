"""The service's health as an on-call engineer reads it: what needs attention, each with its fix.

One assessment of ``dispatcher.operations.queues.queue_health`` for every place an operator looks:
``plp status`` (its exit status), ``GET /v1/status`` (admins), and ``/metrics``
(``plp_problem{problem=...}``, one alerting rule for them all). The web's readiness does not use
it: a web process is ready when it can serve (Redis answers), whatever the other processes do,
so that the providers' callbacks keep coming in while the workers are down.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from config import Settings
from dispatcher.operations.queues import QueueHealth

#: The class whose name says a channel is served by the outbox (no credentials).
OUTBOX = "OutboxChannel"


class Concern(StrEnum):
    """Each kind of problem; the ``problem`` label of ``plp_problem``."""

    NO_URGENT_WORKER = "no_urgent_worker"
    NO_GENERAL_WORKER = "no_general_worker"
    CLOCK_STOPPED = "clock_stopped"
    URGENT_LATE = "urgent_late"
    PROVIDER_FAILING = "provider_failing"


@dataclass(frozen=True)
class Problem:
    """Something that needs attention: its ``concern`` and a sentence saying what and how to fix it."""

    concern: Concern
    sentence: str


def problems(health: QueueHealth, settings: Settings) -> list[Problem]:
    """What needs attention, most urgent first, each with its fix (empty: healthy)."""
    found = []
    if health.lane("urgent").workers_alive == 0:
        found.append(
            Problem(
                Concern.NO_URGENT_WORKER,
                "no worker serves the urgent queue: start one with `plp worker urgent` (or `plp dev`)",
            )
        )
    waited = health.lane("urgent").oldest_age
    if waited is not None and waited > settings.urgent_wait_alarm:
        found.append(
            Problem(
                Concern.URGENT_LATE,
                f"the next urgent job has waited {waited:.0f} s (PLP_URGENT_WAIT_ALARM: "
                f"{settings.urgent_wait_alarm:g} s): urgent alerts are late; check the workers below, start more "
                "with `plp worker urgent`",
            )
        )
    if health.lane("general").workers_alive == 0:
        found.append(
            Problem(
                Concern.NO_GENERAL_WORKER, "no worker serves the general queue: start one with `plp worker general`"
            )
        )
    if not health.clock.alive:
        found.append(
            Problem(
                Concern.CLOCK_STOPPED,
                "the clock is not sweeping (retries, dead workers' work, timers wait): start it with `plp clock`",
            )
        )
    found.extend(_failing_providers(health))
    return found


def _failing_providers(health: QueueHealth) -> list[Problem]:
    found = []
    for provider in health.providers:
        if provider.failing:
            ago = "" if provider.last_failure_age is None else f", the last {provider.last_failure_age:.0f} s ago"
            found.append(
                Problem(
                    Concern.PROVIDER_FAILING,
                    f"{provider.provider} is failing for {provider.channel}: its last {provider.failures} calls "
                    f"failed ({provider.last_failure}{ago}); check its status page, the credentials and the "
                    "workers' `channel.` log lines",
                )
            )
    return found


def notes(health: QueueHealth) -> list[str]:
    """What is worth knowing but not a fault here: the channels the outbox serves (no credentials)."""
    outbox = sorted(channel for channel, served_by in health.channels.items() if served_by == OUTBOX)
    if not outbox:
        return []
    return [
        f"served by the outbox file, not a provider (no credentials): {', '.join(outbox)}; "
        "set the provider's variables to send for real"
    ]


def report(health: QueueHealth, settings: Settings) -> dict[str, Any]:
    """Everything above as JSON-ready data: ``status`` (``ok`` or ``attention``), ``problems``, ``notes``, figures.

    The body of ``GET /v1/status`` and the output of ``plp status --json``.
    """
    found = problems(health, settings)
    return {
        "status": "attention" if found else "ok",
        "problems": [{"problem": p.concern.value, "detail": p.sentence} for p in found],
        "notes": notes(health),
        **health.to_dict(),
    }


__all__ = ["OUTBOX", "Concern", "Problem", "notes", "problems", "report"]
