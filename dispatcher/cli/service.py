"""Running the service: ``plp dev``, ``web``, ``worker``, ``clock``, ``purge``, ``telegram-webhook``."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import structlog
from aiohttp import web

from channels.base import ChannelError
from config import Environment, Settings
from config.settings import local_url
from dispatcher.cli.common import CONTEXT, cli_runtime, cli_settings, refuse, service_runtime
from dispatcher.core.models import Role
from dispatcher.operations.heap import freeze_start_up_heap

if TYPE_CHECKING:
    from dispatcher.people.demo import Demo

DEMO_TOKENS_FILE = "demo-tokens.env"

log = structlog.get_logger(__name__)


@click.command("web", context_settings=CONTEXT, short_help="Run the HTTP API.")
def serve_web() -> None:
    """Run the HTTP API on PLP_HOST:PLP_PORT (default 127.0.0.1:8080), and say so (web.listening).

    PORT is not read, even when PLP_PORT is unset: Procfile runners set it for every process
    (honcho: 5000), so it would move the API away from PLP_PORT and PLP_PUBLIC_BASE_URL. On a
    platform that routes to $PORT, write the Procfile's line as
    web: PLP_HOST=0.0.0.0 PLP_PORT=$PORT plp web

    Redis is REDIS_URL (with PLP_ENV=development, the embedded Redis in PLP_DATA_DIR when it is
    unset). In production (PLP_ENV, the default), it refuses to start on an unsafe configuration,
    or while a PLP's charter names a channel with no credentials and no outbox allowed
    (PLP_OUTBOX_CHANNELS), naming each. Run as many web processes as needed behind a proxy:
    they share everything through Redis.
    PLP_WEB_PROCESSES=N serves the port from N processes at once (SO_REUSEPORT), one per core
    for heavy webhook traffic.

    Like the workers and the clock, it first checks the data version in Redis (waiting for Redis
    if it does not answer yet): older data is migrated, data of a newer release refused (exit 1).
    """
    from channels import announce_channels

    settings = cli_settings()
    # Refused on what production refuses; the data's version checked once before any process serves
    # (and its client closed before they fork).
    service_runtime(settings).close()
    announce_channels(settings)
    if settings.web_processes == 1:
        _serve(settings, reuse_port=False)
        return
    # Several processes bound to the same port (SO_REUSEPORT): the kernel spreads the connections.
    # Forked before any event loop or connection exists; each builds its own app and clients.
    # A SIGTERM before the server is up must still stop the other processes: exit through `finally`.
    signal.signal(signal.SIGTERM, _stop)
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_serve, args=(settings, True)) for _ in range(settings.web_processes - 1)]
    for child in children:
        child.start()
    try:
        _serve(settings, reuse_port=True)
    finally:
        for child in children:
            child.terminate()
            child.join(timeout=10)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, reuse_port: bool) -> None:
    from dispatcher.api.app import create_app

    app = create_app(cli_runtime(settings, check_data=False))
    log.info("web.heap_frozen", objects=freeze_start_up_heap())  # never gone over again by a full collection
    if settings.listen_fd is not None:  # connections already wait in its backlog: served as soon as the app is up
        sock = socket.socket(fileno=settings.listen_fd)
        host, port = sock.getsockname()[:2]
        web.run_app(app, sock=sock, print=_listening(local_url(host, port)))
        return
    web.run_app(
        app, host=settings.host, port=settings.port, reuse_port=reuse_port or None, print=_listening(settings.local_url)
    )


def _listening(url: str) -> Callable[[str], None]:
    """What aiohttp calls once the socket is bound and the app started: one event saying where the API answers."""
    return lambda _: log.info("web.listening", url=url, pid=os.getpid())


@click.command(context_settings=CONTEXT, short_help="Run a worker of one lane (urgent or general).")
@click.argument("lane", type=click.Choice(["urgent", "general"]))
@click.option("--burst", is_flag=True, help="Stop once the queues are empty (instead of waiting for work).")
def worker(lane: str, burst: bool) -> None:
    """Run a worker of one LANE: urgent serves urgent work only; general serves urgent first, then the rest.

    \b
    Example:
      plp worker urgent
    """
    from workers.main import Lane, run_worker

    settings = cli_settings()
    service_runtime(settings)  # refuses what production refuses; the embedded Redis in development; data checked
    run_worker(settings, Lane(lane), burst=burst)


@click.command(context_settings=CONTEXT, short_help="Run the clock: retries, dead workers' work, timers.")
def clock() -> None:
    """Run the clock: due retries, work of dead workers, timers (escalations, checks, holds), daily purge.

    Sweeps every PLP_CLOCK_INTERVAL seconds; one clock is enough, a second one is harmless.
    """
    from dispatcher.pipeline import clock as the_clock

    settings = cli_settings()
    signal.signal(signal.SIGTERM, _stop)  # a stop leaves through `finally`: the clock says it is gone
    the_clock.run(service_runtime(settings))


@click.command(context_settings=CONTEXT, short_help="Purge data older than PLP_RETENTION_DAYS, now.")
def purge() -> None:
    """Purge deliveries, receipts and replies older than PLP_RETENTION_DAYS, now.

    The clock runs the purge daily; without the clock, run this from cron.

    \b
    Example (daily at 3:17):
      17 3 * * * cd /srv/plp && .venv/bin/plp purge
    """
    from dispatcher.people import retention

    settings = cli_settings()
    rt = cli_runtime(settings)
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


@click.command(
    "telegram-webhook", context_settings=CONTEXT, short_help="Register the bot's Telegram webhook and its menu."
)
def telegram_webhook() -> None:
    """Register <PLP_PUBLIC_BASE_URL>/v1/webhooks/telegram as the bot's webhook, with TELEGRAM_WEBHOOK_SECRET,
    and the bot's menu of commands in each language (/profil, /profiel, /profile: the member's own page; /stop).

    Needs TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET and a PLP_PUBLIC_BASE_URL that Telegram can reach (HTTPS).
    """
    from channels.inbound import hook_path
    from channels.telegram import TelegramChannel, TelegramInbound
    from dispatcher.core.models import Language
    from dispatcher.core.wording import telegram_menus

    settings = cli_settings()
    if not TelegramChannel.configured(settings) or settings.telegram_webhook_secret is None:
        raise click.ClickException("set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first")
    url = f"{settings.public_base_url.rstrip('/')}{hook_path(TelegramInbound.vendor)}"

    async def register() -> None:
        channel = TelegramChannel.from_settings(settings)
        try:
            await channel.set_webhook(url, settings.telegram_webhook_secret.get_secret_value())  # type: ignore[union-attr]
            await channel.set_commands(telegram_menus(Language.EN))
        finally:
            await channel.close()

    try:
        asyncio.run(register())
    except ChannelError as exc:
        raise click.ClickException(f"Telegram refused the webhook: {exc}") from None
    click.echo(f"Telegram now posts the bot's updates to {url}; the bot's menu is set in fr, nl, de and en")


@click.command(context_settings=CONTEXT, short_help="Run the whole service here, with a demo PLP.")
@click.option(
    "--procfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default="Procfile",
    show_default=True,
    help="The processes to run (web, workers, clock), run by honcho.",
)
def dev(procfile: Path) -> None:
    """Run the whole service here: embedded Redis (unless REDIS_URL), demo data, web, workers and clock.

    Runs with PLP_ENV=development, whatever the environment says: its processes too. Seeds a
    demo PLP ("demo") with six members and one actor per role, and writes a fresh token for
    each to PLP_DATA_DIR/demo-tokens.env: the other plp commands use them when no --token is
    given. Without vendor credentials, messages land in PLP_DATA_DIR/outbox.jsonl (their
    status is outbox: they reached nobody). Stop with Ctrl-C.

    \b
    Example, then from another terminal:
      plp dev
      plp alert send --plp demo --urgent --category burglary --text fr="Cambriolage rue du Parc" --watch
    """
    from dispatcher.people.demo import seed_demo
    from dispatcher.storage.redis_server import EmbeddedRedis
    from dispatcher.storage.store import Store

    settings = cli_settings().model_copy(update={"environment": Environment.DEVELOPMENT})
    rt = cli_runtime(settings)

    async def seed() -> Demo:
        redis = rt.async_redis()
        try:
            return await seed_demo(Store(redis, rt.keys), region=settings.default_region)
        finally:
            await redis.aclose()

    demo = asyncio.run(seed())
    tokens_file = settings.data_dir / DEMO_TOKENS_FILE
    tokens_file.parent.mkdir(parents=True, exist_ok=True)  # with REDIS_URL, nothing else made it
    tokens_file.write_text("".join(f"export PLP_{role.value.upper()}_TOKEN={t}\n" for role, t in demo.tokens.items()))
    tokens_file.chmod(0o600)
    _print_welcome(settings, rt.redis_url, demo, tokens_file)
    env = {
        "PLP_LOG_FORMAT": "console",
        **os.environ,
        "PLP_ENV": Environment.DEVELOPMENT.value,
        "REDIS_URL": rt.redis_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    # honcho would also read a .env file of the folder into every process, behind the settings just
    # read here (the URL announced, the Redis seeded): the processes get this environment only.
    honcho_command = [shutil.which("honcho", path=env["PATH"]) or "honcho", "start", "-e", os.devnull]
    honcho = subprocess.Popen([*honcho_command, "-f", str(procfile)], env=env)
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
    base = settings.local_url
    click.echo(
        f"""
plp-dispatch is starting at {base}  (Redis: {redis_url})
Demo PLP {demo.plp.id!r} ({demo.plp.name}, zone {demo.plp.police_zone}) with {demo.members} members.
Tokens for the demo actors (shown once) are in {tokens_file}:
  admin        {demo.tokens[Role.ADMIN]}
  police       {demo.tokens[Role.POLICE]}
  coordinator  {demo.tokens[Role.COORDINATOR]}

Open the web console at {base}/console and sign in with one of these tokens.

Or send a first urgent alert and watch it, from another terminal in this folder (the plp
commands use the demo tokens above; --as police picks the officer's):
  plp alert send --as police --plp demo --urgent --category burglary --watch \\
      --text fr="Cambriolage rue du Parc il y a 10 min, voiture grise 1-ABC-123" \\
      --text nl="Inbraak in de Parkstraat 10 min geleden, grijze wagen 1-ABC-123"

Or with curl:
  source {tokens_file}
  curl -s -X POST {base}/v1/alerts -H "Authorization: Bearer $PLP_POLICE_TOKEN" \\
       -H 'Content-Type: application/json' -H 'Idempotency-Key: first-alert' \\
       -d '{{"urgency": "urgent", "category": "burglary", "plp_ids": ["demo"],
            "texts": {{"fr": "Cambriolage rue du Parc il y a 10 min, voiture grise 1-ABC-123",
                      "nl": "Inbraak in de Parkstraat 10 min geleden, grijze wagen 1-ABC-123"}}}}'
Then follow it with GET {base}/v1/alerts/<id>; the messages land in {settings.outbox_file}
(their status is outbox: they reached nobody). This runs with PLP_ENV=development; so must the
commands that work on Redis directly (PLP_ENV=development plp status, plp token ...).
"""
    )


@click.command(
    context_settings={**CONTEXT, "ignore_unknown_options": True}, short_help="Run the service under supervisord."
)
@click.option("--web", "web_count", type=click.IntRange(1, 64), default=2, show_default=True, help="Web processes.")
@click.option(
    "--general", "general_count", type=click.IntRange(1, 64), default=2, show_default=True, help="General workers."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default="deploy/supervisord.conf",
    show_default=True,
    help="The supervisord configuration.",
)
@click.option("--ctl", is_flag=True, help="Run supervisorctl with ARGS against the running supervisord instead.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def supervise(web_count: int, general_count: int, config_file: Path, ctl: bool, args: tuple[str, ...]) -> None:
    """Run every process of the service under supervisord, in the foreground: each restarted when it exits.

    Web processes share one socket on PLP_HOST:PLP_PORT that supervisord keeps open; the urgent
    worker, the general workers and the clock run beside them. Needs REDIS_URL: supervised
    processes share one Redis (and one PLP_SECRET_KEY, for the links they sign). Logs and the
    control socket go to PLP_DATA_DIR/log and PLP_DATA_DIR/run. ARGS go to supervisord, or with
    --ctl to supervisorctl.

    \b
    Examples:
      plp supervise --web 2 --general 3
      plp supervise --ctl status          # from another terminal, same folder and variables
      plp supervise --ctl restart general:*
    """
    settings = cli_settings(logging=False)
    if faults := settings.production_faults():
        raise refuse(faults)
    if not settings.redis_url:
        raise click.ClickException("set REDIS_URL: the supervised processes share one Redis server")
    env = {**os.environ, **supervisor_env(settings, web=web_count, general=general_count)}
    for folder in ("PLP_SUPERVISOR_LOG_DIR", "PLP_SUPERVISOR_RUN_DIR"):
        Path(env[folder]).mkdir(parents=True, exist_ok=True)
    tool = "supervisorctl" if ctl else "supervisord"
    command = [shutil.which(tool, path=env["PATH"]) or tool, "-c", str(config_file)]
    command += list(args) if ctl else ["--nodaemon", *args]
    os.execvpe(command[0], command, env)


def supervisor_env(settings: Settings, *, web: int, general: int) -> dict[str, str]:
    """The PLP_SUPERVISOR_* variables deploy/supervisord.conf reads (supervisord has no defaults of its own)."""
    data_dir = settings.data_dir.resolve()
    bin_dir = Path(sys.executable).parent
    return {
        "PLP_SUPERVISOR_BIN": str(bin_dir),
        "PLP_SUPERVISOR_DIR": str(Path.cwd()),
        "PLP_SUPERVISOR_LOG_DIR": str(data_dir / "log"),
        "PLP_SUPERVISOR_RUN_DIR": str(data_dir / "run"),
        "PLP_SUPERVISOR_LISTEN": f"{settings.host}:{settings.port}",
        "PLP_SUPERVISOR_WEB": str(web),
        "PLP_SUPERVISOR_GENERAL": str(general),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
