"""``plp status``: the health of the queues, read directly in Redis (it must work when the API does not)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
import redis

from dispatcher.cli.common import CONTEXT, EXIT_PARTIAL, cli_runtime, cli_settings, echo_json, echo_table

if TYPE_CHECKING:
    from dispatcher.queues import QueueHealth


@click.command("status", context_settings=CONTEXT, short_help="Queue health: pending work, workers, clock, limits.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (for scripts and monitoring).")
def status(as_json: bool) -> None:
    """Show queue health: pending work per queue and how long it waited, workers alive per lane, the
    clock, and the provider limits in effect.

    Reads the Redis of REDIS_URL (or the embedded one) directly, so it works while the API is
    down. Exit status: 0 healthy; 3 when something needs attention (no worker for a lane,
    the clock stopped), each said with its fix; 1 when Redis cannot be reached.

    \b
    Example (a cron or monitoring check):
      plp status || echo "plp-dispatch needs attention"
    """
    from dispatcher.queues import queue_health

    settings = cli_settings(logging=False)
    runtime = cli_runtime(settings)
    try:
        health = queue_health(runtime)
    except (redis.RedisError, OSError) as exc:
        raise click.ClickException(
            f"Redis at {runtime.redis_url} does not answer ({exc}); start it, or set REDIS_URL to the service's Redis"
        ) from None
    problems = _problems(health)
    if as_json:
        echo_json({**health.to_dict(), "problems": problems})
    else:
        _echo_health(health, runtime.redis_url)
        for problem in problems:
            click.echo(f"attention: {problem}")
    if problems:
        raise SystemExit(EXIT_PARTIAL)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _echo_health(health: QueueHealth, redis_url: str) -> None:
    click.echo(f"Redis {redis_url}: answers")
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
    click.echo("workers:")
    seen: set[str] = set()
    for lane in health.lanes:
        for worker in lane.workers:
            if worker.name not in seen:
                seen.add(worker.name)
                click.echo(f"  {worker.name}  {worker.state}, last heartbeat {_age(worker.heartbeat_age)} ago")
    if not seen:
        click.echo("  none")
    clock = health.clock
    swept = "never seen" if clock.last_sweep_age is None else f"last sweep {_age(clock.last_sweep_age)} ago"
    click.echo(f"clock: {'alive' if clock.alive else 'stopped'}, {swept}")
    click.echo("provider limits in effect:")
    if health.limits:
        for limit in health.limits:
            click.echo(f"  {limit.channel:<9} {limit.name:<14} {limit.per_second:g}/s  {limit.detail}".rstrip())
    else:
        click.echo("  none (every channel is served by the outbox)")
    click.echo("channels: " + ", ".join(f"{channel} by {cls}" for channel, cls in sorted(health.channels.items())))


def _problems(health: QueueHealth) -> list[str]:
    """What needs attention, each with its fix."""
    found = []
    if health.lane("urgent").workers_alive == 0:
        found.append("no worker serves the urgent queue: start one with `plp worker urgent` (or `plp dev`)")
    if health.lane("general").workers_alive == 0:
        found.append("no worker serves the general queue: start one with `plp worker general`")
    if not health.clock.alive:
        found.append("the clock is not sweeping (retries, dead workers' work, timers wait): start it with `plp clock`")
    return found
