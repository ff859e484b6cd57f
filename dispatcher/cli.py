"""``plp``: run the service and operate it from a terminal."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from aiohttp import web
from pydantic import ValidationError

from channels.base import ChannelError
from config import Settings, load_settings
from dispatcher.logging import configure_logging
from dispatcher.models import ActorIn, Role

if TYPE_CHECKING:
    from dispatcher.demo import Demo
    from dispatcher.runtime import Runtime


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


@main.group()
def token() -> None:
    """Bearer tokens: shown once, stored only as a hash."""


@token.command("issue")
@click.option("--name", required=True, help="Who the token is for.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--zone", help="Police zone (police officers).")
@click.option("--plp", "plps", multiple=True, help="PLP id (coordinators; repeat for several).")
def issue(name: str, role: str, zone: str | None, plps: tuple[str, ...]) -> None:
    """Create an actor with a role and print their token, once."""
    from dispatcher.accounts import create_actor
    from dispatcher.store import Store

    try:
        data = ActorIn(name=name, role=Role(role), police_zone=zone, plp_ids=list(plps))
    except ValidationError as exc:
        raise click.ClickException(exc.errors()[0]["msg"]) from None
    rt = _runtime(_settings())

    async def run() -> tuple[str, str]:
        redis = rt.async_redis()
        try:
            actor, secret = await create_actor(Store(redis, rt.keys), data)
            return actor.id, secret
        finally:
            await redis.aclose()

    try:
        actor_id, secret = asyncio.run(run())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"actor {actor_id} ({role})\ntoken (shown once, keep it secret): {secret}")


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
