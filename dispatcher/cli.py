"""``plp``: run the service and operate it from a terminal."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from aiohttp import web
from pydantic import ValidationError

from channels.base import ChannelError
from config import Settings, load_settings
from config.settings import MAX_TOKEN_TTL_DAYS
from dispatcher.audit import Action
from dispatcher.logging import configure_logging
from dispatcher.models import Actor, ActorIn, Role

if TYPE_CHECKING:
    from dispatcher.demo import Demo
    from dispatcher.runtime import Runtime
    from dispatcher.store import NewToken, Store, TokenRecord

T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"the configuration is not valid: {problems}") from None
    configure_logging(settings)
    return settings


def _runtime(settings: Settings) -> Runtime:
    from dispatcher.redis_server import EmbeddedRedisError
    from dispatcher.runtime import Runtime

    try:
        return Runtime.from_settings(settings)
    except EmbeddedRedisError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """plp-dispatch: alerts from the police to the members of Local Prevention Partnerships."""


@main.command("web")
def serve_web() -> None:
    """Run the HTTP API (PLP_HOST, PLP_PORT)."""
    from channels import announce_channels
    from dispatcher.api.app import create_app

    settings = _settings()
    announce_channels(settings)
    web.run_app(create_app(_runtime(settings)), host=settings.host, port=settings.port, print=None)


@main.command()
@click.argument("lane", type=click.Choice(["urgent", "general"]))
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
def worker(lane: str, burst: bool) -> None:
    """Run a worker: LANE urgent serves urgent work only; general serves urgent first, then the rest."""
    from workers.main import Lane, run_worker

    settings = _settings()
    _runtime(settings)  # starts the embedded Redis if needed, with a clear error if it cannot
    run_worker(settings, Lane(lane), burst=burst)


@main.command()
def clock() -> None:
    """Run the clock: due retries, work of dead workers, timers (escalations, checks, holds)."""
    from dispatcher import clock as the_clock

    settings = _settings()
    the_clock.run(_runtime(settings))


@main.command()
def purge() -> None:
    """Purge deliveries, receipts and replies older than PLP_RETENTION_DAYS, now.

    The clock runs the purge daily; without the clock, run this from cron, e.g. daily at
    3:17: ``17 3 * * * cd /srv/plp && .venv/bin/plp purge``.
    """
    from dispatcher import retention

    settings = _settings()
    rt = _runtime(settings)
    alerts = deliveries = replies = 0
    while True:
        done = retention.purge(rt)
        alerts, deliveries, replies = alerts + done.alerts, deliveries + done.deliveries, replies + done.feedback
        if done.done:
            break
    click.echo(
        f"purged {deliveries} deliveries and {replies} replies of {alerts} alerts "
        f"older than {settings.retention_days} days"
    )


@main.group()
def token() -> None:
    """Bearer tokens: shown once, stored only as a hash."""


def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` on a store of the configured Redis, in an event loop of its own."""
    from dispatcher.store import Store

    rt = _runtime(settings)

    async def run() -> T:
        redis = rt.async_redis()
        try:
            return await work(Store(redis, rt.keys))
        finally:
            await redis.aclose()

    return asyncio.run(run())


async def _audit(store: Store, action: Action, **target: str) -> None:
    """The command line's entry in the audit log (actor "cli", role "operator")."""
    from dispatcher import audit

    await audit.record(store.redis, store.keys, actor=None, action=action, target=target)


@token.command("issue")
@click.option("--actor", "actor_id", help="Issue another token to this existing actor (instead of --name, --role).")
@click.option("--name", help="Who the token is for (a new actor).")
@click.option("--role", type=click.Choice([r.value for r in Role]))
@click.option("--zone", help="Police zone (police officers).")
@click.option("--plp", "plps", multiple=True, help="PLP id (coordinators; repeat for several).")
@click.option("--ttl-days", type=click.IntRange(1, MAX_TOKEN_TTL_DAYS), help="Validity (default PLP_TOKEN_TTL_DAYS).")
def issue(
    actor_id: str | None,
    name: str | None,
    role: str | None,
    zone: str | None,
    plps: tuple[str, ...],
    ttl_days: int | None,
) -> None:
    """Create an actor with a role (or take an existing one) and print a new token, once."""
    from dispatcher.accounts import open_account

    if actor_id is not None and (name or role):
        raise click.UsageError("--actor issues to an existing actor: leave out --name and --role")
    if actor_id is None and not (name and role):
        raise click.UsageError("give --name and --role for a new actor, or --actor ID for an existing one")
    data = None
    if actor_id is None:
        assert name and role  # checked above
        try:
            data = ActorIn(name=name, role=Role(role), police_zone=zone, plp_ids=list(plps))
        except ValidationError as exc:
            raise click.ClickException(exc.errors()[0]["msg"]) from None
    settings = _settings()
    days = ttl_days or settings.token_ttl_days

    async def work(store: Store) -> tuple[Actor, NewToken]:
        if data is not None:
            actor, token = await open_account(store, data, ttl_days=days)
            await _audit(store, Action.ACTOR_CREATED, actor=actor.id)
        else:
            found = await store.get_actor(actor_id or "")
            if found is None:
                raise ValueError(f"no actor {actor_id!r}")
            actor, token = found, await store.issue_token(found, ttl_days=days)
        await _audit(store, Action.TOKEN_ISSUED, actor=actor.id, token=token.record.id)
        return actor, token

    try:
        actor, token = _with_store(settings, work)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"actor {actor.id} ({actor.role.value})\n"
        f"token id {token.record.id}, expires {token.record.expires_at:%Y-%m-%d %H:%M} UTC\n"
        f"token (shown once, keep it secret): {token.secret}"
    )


@token.command("list")
@click.option("--actor", "actor_id", help="Only this actor's tokens.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
def list_tokens(actor_id: str | None, limit: int) -> None:
    """List tokens, newest first: id, actor, role, issued, expires, status. Never the secrets."""
    from dispatcher.store import now_ts

    async def work(store: Store) -> list[tuple[TokenRecord, Actor | None]]:
        records = await store.list_tokens(actor_id=actor_id, limit=limit)
        return [(record, await store.get_actor(record.actor_id)) for record in records]

    rows = [
        (
            record.id,
            record.actor_id,
            actor.name if actor else "-",
            actor.role.value if actor else "-",
            f"{record.issued_at:%Y-%m-%d %H:%M}",
            f"{record.expires_at:%Y-%m-%d %H:%M}",
            record.refusal(now_ts()) or "active",
        )
        for record, actor in _with_store(_settings(), work)
    ]
    header = ("TOKEN", "ACTOR", "NAME", "ROLE", "ISSUED (UTC)", "EXPIRES (UTC)", "STATUS")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@token.command("revoke")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke a token (by its id, tok_...): it is refused from now on."""

    async def work(store: Store) -> TokenRecord | None:
        record = await store.revoke_token(token_id)
        if record is not None:
            await _audit(store, Action.TOKEN_REVOKED, actor=record.actor_id, token=record.id)
        return record

    record = _with_store(_settings(), work)
    if record is None:
        raise click.ClickException(f"no token {token_id!r}")
    click.echo(f"revoked {record.id} of actor {record.actor_id}")


@main.command("telegram-webhook")
def telegram_webhook() -> None:
    """Register <PLP_PUBLIC_BASE_URL>/v1/webhooks/telegram as the bot's webhook, with TELEGRAM_WEBHOOK_SECRET."""
    from channels.telegram import TelegramChannel

    settings = _settings()
    if not settings.telegram_configured or settings.telegram_webhook_secret is None:
        raise click.ClickException("set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first")
    url = f"{settings.public_base_url.rstrip('/')}/v1/webhooks/telegram"

    async def register() -> None:
        channel = TelegramChannel.from_settings(settings)
        try:
            await channel.set_webhook(url, settings.telegram_webhook_secret.get_secret_value())  # type: ignore[union-attr]
        finally:
            await channel.close()

    try:
        asyncio.run(register())
    except ChannelError as exc:
        raise click.ClickException(f"Telegram refused the webhook: {exc}") from None
    click.echo(f"Telegram now posts the bot's updates to {url}")


@main.command()
@click.option("--procfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default="Procfile")
def dev(procfile: Path) -> None:
    """Run the whole service here: embedded Redis (unless REDIS_URL), demo data, web and workers."""
    from dispatcher.demo import seed_demo
    from dispatcher.redis_server import EmbeddedRedis
    from dispatcher.store import Store

    settings = _settings()
    rt = _runtime(settings)

    async def seed() -> Demo:
        redis = rt.async_redis()
        try:
            return await seed_demo(Store(redis, rt.keys), region=settings.default_region)
        finally:
            await redis.aclose()

    demo = asyncio.run(seed())
    tokens_file = settings.data_dir / "demo-tokens.env"
    tokens_file.write_text("".join(f"export PLP_{role.value.upper()}_TOKEN={t}\n" for role, t in demo.tokens.items()))
    tokens_file.chmod(0o600)
    _print_welcome(settings, rt.redis_url, demo, tokens_file)
    env = {
        "PLP_LOG_FORMAT": "console",
        **os.environ,
        "REDIS_URL": rt.redis_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    honcho = subprocess.Popen(
        [shutil.which("honcho", path=env["PATH"]) or "honcho", "-f", str(procfile), "start"], env=env
    )
    # Ctrl-C reaches honcho too (same process group); SIGTERM is passed on. Either way honcho
    # stops the processes, and the embedded Redis is stopped once they are gone.
    signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                code = honcho.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        if not settings.redis_url:
            EmbeddedRedis(settings.data_dir / "redis").stop()
    sys.exit(code)


def _print_welcome(settings: Settings, redis_url: str, demo: Demo, tokens_file: Path) -> None:
    base = f"http://{settings.host}:{settings.port}"
    click.echo(
        f"""
plp-dispatch is starting at {base}  (Redis: {redis_url})
Demo PLP {demo.plp.id!r} ({demo.plp.name}, zone {demo.plp.police_zone}) with {demo.members} members.
Tokens for the demo actors (shown once) are in {tokens_file}:
  admin        {demo.tokens[Role.ADMIN]}
  police       {demo.tokens[Role.POLICE]}
  coordinator  {demo.tokens[Role.COORDINATOR]}

Send a first urgent alert, from another terminal in this folder:
  source {tokens_file}
  curl -s -X POST {base}/v1/alerts -H "Authorization: Bearer $PLP_POLICE_TOKEN" \\
       -H 'Content-Type: application/json' -H 'Idempotency-Key: first-alert' \\
       -d '{{"urgency": "urgent", "category": "burglary", "plp_ids": ["demo"],
            "texts": {{"fr": "Cambriolage rue du Parc il y a 10 min, voiture grise 1-ABC-123",
                      "nl": "Inbraak in de Parkstraat 10 min geleden, grijze wagen 1-ABC-123"}}}}'
Then follow it with GET {base}/v1/alerts/<id>; the messages land in {settings.outbox_file}.
"""
    )


if __name__ == "__main__":
    main()
