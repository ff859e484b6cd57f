"""``plp status``: the whole service's health, read directly in Redis (it must work when the API does not);
``plp probe``: whether the worker or clock of this host or container beats (an orchestrator's liveness probe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
import redis

from dispatcher.cli.common import CONTEXT, EXIT_PARTIAL, cli_runtime, cli_settings, echo_json, echo_table
from dispatcher.operations.heartbeats import PROBE_MAX_AGE

if TYPE_CHECKING:
    from dispatcher.operations.queues import QueueHealth


@click.command("status", context_settings=CONTEXT, short_help="Service health: queues, workers, clock, providers.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (for scripts and monitoring).")
def status(as_json: bool) -> None:
    """Show the whole service's health: pending work per queue and how long it waited, the workers
    alive per lane (by their heartbeats: a dead one is known within 15 s), the clock, the providers
    failing, and the provider limits in effect.

    Reads the Redis of REDIS_URL (or the embedded one) directly, so it works while the API is
    down. Exit status: 0 healthy; 3 when something needs attention (no worker for a lane, urgent
    work waiting longer than PLP_URGENT_WAIT_ALARM, the clock stopped, a provider failing), each
    said with its fix; 1 when Redis cannot be reached.

    \b
    Example (a cron or monitoring check):
      plp status || echo "plp-dispatch needs attention"
    """
    from dispatcher.operations import health as service_health
    from dispatcher.operations.queues import queue_health

    settings = cli_settings(logging=False)
    runtime = cli_runtime(settings)
    try:
        health = queue_health(runtime)
    except (redis.RedisError, OSError) as exc:
        raise click.ClickException(
            f"Redis at {runtime.redis_description} does not answer ({exc}); "
            "start it, or set REDIS_URL to the service's Redis"
        ) from None
    finally:
        runtime.close()
    problems = service_health.problems(health, settings)
    if as_json:
        echo_json(service_health.report(health, settings))
    else:
        _echo_health(health, runtime.redis_description)
        for note in service_health.notes(health):
            click.echo(f"note: {note}")
        for problem in problems:
            click.echo(f"attention: {problem.sentence}")
    if problems:
        raise SystemExit(EXIT_PARTIAL)


@click.command("probe", context_settings=CONTEXT, short_help="Liveness probe of this host's worker or clock.")
@click.argument("kind", type=click.Choice(["worker", "clock"]))
@click.option(
    "--max-age",
    type=click.FloatRange(min=1),
    default=PROBE_MAX_AGE,
    show_default=True,
    help="Seconds without a heartbeat after which the process is taken for dead or stuck.",
)
def probe(kind: str, max_age: float) -> None:
    """Exit 0 if the KIND process (worker or clock) of this host or container beat within MAX_AGE
    seconds, else 1, saying why in one line.

    Reads the heartbeat file the process rewrites every 5 s (PLP_HEARTBEAT_FILE, by default
    plp-worker.heartbeat or plp-clock.heartbeat in the temporary folder), not Redis: a Redis outage,
    which workers and the clock ride out, fails no probe and restarts no process. For Docker's
    HEALTHCHECK and Kubernetes' exec probes; systemd uses its watchdog instead (WatchdogSec=).

    \b
    Example (compose.yaml):
      healthcheck: {test: ["CMD", "plp", "probe", "worker"], interval: 15s}
    """
    from dispatcher.operations.heartbeats import probe as read_probe

    found = read_probe(cli_settings(logging=False), kind, max_age=max_age)
    click.echo(found.sentence)
    if not found.alive:
        raise SystemExit(1)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _echo_health(health: QueueHealth, where: str) -> None:
    click.echo(f"Redis {where}: answers")
    echo_table(
        ("LANE", "QUEUE", "PENDING", "OLDEST WAITING", "SCHEDULED", "STARTED", "FAILED", "WORKERS ALIVE"),
        [
            (
                lane.lane,
                lane.queue,
                lane.pending,
                _age(lane.oldest_age),
                lane.scheduled,
                lane.started,
                lane.failed,
                lane.workers_alive,
            )
            for lane in health.lanes
        ],
    )
    for lane in health.lanes:
        if lane.zones:
            waiting = ", ".join(f"{zone} {jobs}" for zone, jobs in sorted(lane.zones.items()))
            click.echo(f"{lane.lane} send jobs waiting per police zone (taken in turn): {waiting}")
    click.echo("workers:")
    seen: set[str] = set()
    for lane in health.lanes:
        for worker in lane.workers:
            if worker.name not in seen:
                seen.add(worker.name)
                click.echo(
                    f"  {worker.name}  {worker.state}, last heartbeat {_age(worker.heartbeat_age)} ago"
                    f"  (pid {worker.pid} on {worker.host})"
                )
    if not seen:
        click.echo("  none")
    clock = health.clock
    swept = "never seen" if clock.last_sweep_age is None else f"last sweep {_age(clock.last_sweep_age)} ago"
    click.echo(f"clock: {'alive' if clock.alive else 'stopped'}, {swept}")
    for beat in health.clocks:
        click.echo(f"  {beat.name}  last heartbeat {_age(beat.age)} ago  (pid {beat.pid} on {beat.host})")
    if health.lost:
        click.echo("stopped beating without a clean stop (killed, or stuck), in the last day:")
        for beat in health.lost:
            click.echo(
                f"  {beat.role:<8} {beat.name}  last heartbeat {_age(beat.age)} ago  (pid {beat.pid} on {beat.host})"
            )
    failing = [p for p in health.providers if p.failures]
    if failing:
        click.echo("providers with failed calls in a row:")
        for provider in failing:
            click.echo(
                f"  {provider.provider:<9} {provider.channel:<9} {provider.failures} ({provider.last_failure}), "
                f"last success {_age(provider.last_success_age)} ago"
            )
    click.echo("provider limits in effect:")
    if health.limits:
        for limit in health.limits:
            click.echo(f"  {limit.channel:<9} {limit.name:<14} {limit.per_second:g}/s  {limit.detail}".rstrip())
    else:
        click.echo("  none (every channel is served by the outbox)")
    click.echo("channels: " + ", ".join(f"{channel} by {cls}" for channel, cls in sorted(health.channels.items())))
