"""``plp alert``: preview, send (with a confirmation), watch live, list and cancel alerts, through the API."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import click

from dispatcher.cli.client import ApiClient, ApiError, Connection, api_options, run_api
from dispatcher.cli.common import (
    CONTEXT,
    EXIT_PARTIAL,
    echo_json,
    echo_table,
    json_option,
    printable,
    read_document,
)
from dispatcher.cli.watch import FINISHED, watch_alert
from dispatcher.core.models import Category, Language

LANGUAGES = [lang.value for lang in Language]
#: How a refused field of the alert is reported: by the option that set it.
ALERT_OPTIONS = {
    "plp_ids": "--plp",
    "texts": "--text",
    "category": "--category",
    "urgency": "--urgent/--non-urgent",
    "ttl_seconds": "--ttl",
    "about_alert_id": "--about",
}
#: Times a send is tried again with the same Idempotency-Key when the connection drops or the first try is
#: still being stored: the key makes it safe, the API never sends twice.
SEND_TRIES = 4
#: Seconds `plp alert send` waits, by default, for a service that answers 503 (its Redis restarting).
SEND_PATIENCE = 120.0


@click.group("alert", context_settings=CONTEXT, short_help="Alerts: preview, send, watch live, list, cancel.")
def alert_group() -> None:
    """Alerts: preview, send (with a confirmation), watch live until done, list, cancel."""


def _texts(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        language, sep, text = value.partition("=")
        if not sep or language.strip() not in LANGUAGES:
            raise click.BadParameter(f"{value[:40]!r}: write LANG=TEXT, LANG one of {', '.join(LANGUAGES)}")
        found[language.strip()] = text
    return found


def _text_files(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``LANG=PATH`` (one language's text, the whole file), or ``PATH`` (a JSON/YAML mapping of LANG: TEXT)."""
    found: dict[str, str] = {}
    for value in values:
        language, sep, path = value.partition("=")
        if sep and re.fullmatch(r"[a-z]{2}", language):
            if language not in LANGUAGES:
                raise click.BadParameter(f"{value!r}: LANG is one of {', '.join(LANGUAGES)}")
            try:
                found[language] = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise click.BadParameter(f"cannot read {path}: {exc}") from None
            continue
        data = read_document(Path(value), option="--text-file")
        if not isinstance(data, dict) or not all(isinstance(t, str) for t in data.values()):
            raise click.BadParameter(f"{value} is not a mapping of language to text (fr: ..., nl: ...)")
        found |= {str(k): v.strip() for k, v in data.items()}
    return found


#: ``500 m around Rue du Parc 12, 1180 Uccle``: a radius, then an address (street and number, postcode and/or commune).
_AROUND = re.compile(
    r"\s*(?P<radius>\d+(?:\.\d+)?)\s*m\s+around\s+(?P<street>[^,]+?)(?:\s+(?P<number>\d[0-9A-Za-z/.-]*))?\s*,"
    r"\s*(?P<postcode>\d{4})?\s*(?P<commune>[^,]*?)\s*",
    re.IGNORECASE,
)
CIRCLE_FORMS = 'LAT,LON,METRES (e.g. 50.8503,4.3517,500) or "METRES m around STREET NUMBER, POSTCODE COMMUNE"'


def _circle(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if around := _AROUND.fullmatch(value):
        parts = {k: around.group(k) for k in ("street", "number", "postcode", "commune")}
        address = {k: v.strip() for k, v in parts.items() if v and v.strip()}
        return {"address": address, "radius_m": float(around.group("radius"))}
    try:
        lat, lon, radius = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"write it {CIRCLE_FORMS}") from None
    return {"center": {"lat": lat, "lon": lon}, "radius_m": radius}


def _area(sectors: tuple[str, ...], circle: dict[str, Any] | None, streets: tuple[str, ...]) -> dict[str, Any] | None:
    given = [("sectors", list(sectors)), ("circle", circle), ("streets", list(streets))]
    chosen = {name: value for name, value in given if value}
    if len(chosen) > 1:
        raise click.UsageError("choose one of --sector, --circle and --street")
    return chosen or None


def alert_body_options(command: Any) -> Any:
    """The options that describe an alert, shared by ``send`` and ``preview``."""
    decorators = [
        click.option(
            "--plp",
            "plps",
            multiple=True,
            required=True,
            help="Target PLP id (repeat for several; `plp plp list` shows yours).",
        ),
        click.option(
            "--urgent/--non-urgent",
            default=None,
            help="Urgent: sent at once on the urgent channels. Non-urgent: prevention advice, may wait for "
            "quiet hours and the coordinators' relay. One of the two is required.",
        ),
        click.option(
            "--category",
            type=click.Choice([c.value for c in Category]),
            required=True,
            help="What it is about.",
        ),
        click.option(
            "--text",
            "texts",
            multiple=True,
            callback=_texts,
            metavar="LANG=TEXT",
            help=f"The message in one language ({', '.join(LANGUAGES)}); repeat per language. Members get "
            "theirs, else the PLP's language.",
        ),
        click.option(
            "--text-file",
            "text_files",
            multiple=True,
            callback=_text_files,
            metavar="LANG=PATH|PATH",
            help="A language's text from a file (fr=message.txt), or all of them from a JSON/YAML file "
            "(fr: ..., nl: ...).",
        ),
        click.option(
            "--ttl",
            type=click.IntRange(60, 30 * 86400),
            help="Seconds after which nothing more is sent (default: the shortest of the target charters').",
        ),
        click.option("--about", "about", metavar="ALERT_ID", help="Police feedback about this earlier alert."),
        click.option(
            "--sector",
            "sectors",
            multiple=True,
            metavar="SECTOR_ID",
            help="Only this sector of the target PLPs (repeat for several; `GET /v1/plps/{id}/sectors` lists them).",
        ),
        click.option(
            "--circle",
            callback=_circle,
            metavar="LAT,LON,METRES",
            help=(
                "Only the members within METRES of the point (e.g. 50.8503,4.3517,500), or of an address: "
                '"500 m around Rue du Parc 12, 1180 Uccle" (located by the geocoder).'
            ),
        ),
        click.option("--street", "streets", multiple=True, help="Only the members of this street (repeat it)."),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def _body(
    *,
    plps: tuple[str, ...],
    urgent: bool | None,
    category: str,
    texts: dict[str, str],
    text_files: dict[str, str],
    ttl: int | None,
    about: str | None,
    sectors: tuple[str, ...] = (),
    circle: dict[str, Any] | None = None,
    streets: tuple[str, ...] = (),
) -> dict[str, Any]:
    if urgent is None:
        raise click.UsageError("say --urgent or --non-urgent")
    merged = {**text_files, **texts}
    if not merged:
        raise click.UsageError("give the message: --text fr=... (repeat per language) or --text-file")
    body: dict[str, Any] = {
        "urgency": "urgent" if urgent else "non_urgent",
        "category": category,
        "plp_ids": list(plps),
        "texts": merged,
    }
    if ttl is not None:
        body["ttl_seconds"] = ttl
    if about is not None:
        body["about_alert_id"] = about
    if (area := _area(sectors, circle, streets)) is not None:
        body["area"] = area
    return body


def _echo_preview(body: dict[str, Any], preview: dict[str, Any]) -> None:
    urgency = "URGENT" if body["urgency"] == "urgent" else "Non-urgent"
    click.echo(f"{urgency} alert ({body['category']}) to {', '.join(body['plp_ids'])}")
    click.echo("SMS per language:")
    for sms in preview["sms"]:
        segments = f"{sms['segments']} segment{'s' if sms['segments'] != 1 else ''}"
        click.echo(f"  {sms['language']}  {sms['encoding']}, {segments}:")
        for line in printable(sms["text"]).splitlines():
            click.echo(f"      {line}")
    reach = ", ".join(f"{channel} {count}" for channel, count in sorted(preview["by_channel"].items())) or "none"
    click.echo(
        f"Members reached: {preview['members_reached']} "
        f"(unreachable {preview['members_unreachable']}, opted out {preview['members_opted_out']}"
        + (
            f", declined non-urgent messages {declined}"
            if (declined := preview.get("members_declined_non_urgent", 0))
            else ""
        )
        + ")"
    )
    if body.get("area") or len(preview.get("by_plp", {})) > 1:
        per_plp = ", ".join(f"{plp} {count}" for plp, count in preview.get("by_plp", {}).items()) or "none"
        click.echo(f"Per PLP: {per_plp}")
    if preview.get("by_sector"):
        per_sector = ", ".join(f"{s['plp_id']}/{s['sector_id']} {s['members']}" for s in preview["by_sector"])
        click.echo(f"Per sector: {per_sector}")
    if body.get("area"):
        click.echo(
            f"Without a known place: {preview.get('members_unlocated', 0)} reached, "
            f"{preview.get('members_unlocated_left_out', 0)} left out (their charter)"
        )
    click.echo(f"Deliveries by channel: {reach}")
    cost = preview["cost"]
    click.echo(
        f"Estimated cost: {cost['estimated']} {cost['currency']} "
        f"({cost['sms_segments']} SMS segments, {cost['voice_minutes']} call minutes)"
    )


@alert_group.command("preview", context_settings=CONTEXT, short_help="What an alert would do: SMS, reach, cost.")
@alert_body_options
@json_option
@api_options
def preview_alert(*, connection: Connection, as_json: bool, **fields: Any) -> None:
    """Show what an alert would do, without sending it: the SMS per language with its segments, the members
    reached per channel, the estimated cost.

    \b
    Example:
      plp alert preview --plp parc --non-urgent --category prevention_advice \\
          --text fr="Vacances: pensez à fermer vos fenêtres" --text nl="Vakantie: sluit uw ramen"
    """
    body = _body(**fields)

    async def work(api: ApiClient) -> Any:
        return (await api.call("POST", "/v1/alerts/preview", json_body=body, options=ALERT_OPTIONS)).body

    preview = run_api(connection, work)
    if as_json:
        echo_json(preview)
    else:
        _echo_preview(body, preview)


def _confirmed(body: dict[str, Any], preview: dict[str, Any]) -> bool:
    """Ask before sending: a yes for non-urgent alerts; the word URGENT typed for urgent ones."""
    members = preview["members_reached"]
    if members == 0:
        click.echo("Warning: this alert reaches no member.", err=True)
    if body["urgency"] == "urgent":
        typed = click.prompt(
            f"Type URGENT to send this urgent alert to {members} members now", default="", show_default=False
        )
        return bool(typed.strip().upper() == "URGENT")
    return click.confirm(f"Send this non-urgent alert to {members} members?", default=False)


@alert_group.command("send", context_settings=CONTEXT, short_help="Preview, confirm and send an alert, once.")
@alert_body_options
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Send without asking (scripts). Without it, the preview is "
    "shown and a confirmation asked: y for non-urgent, the word URGENT for urgent.",
)
@click.option("--watch", is_flag=True, help="Then watch it live until it is done (as `plp alert watch`).")
@click.option("--timeout", type=click.FloatRange(1), help="With --watch: stop watching after this many seconds.")
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Sending again with the same key and message never sends twice (default: a new key each time).",
)
@click.option(
    "--retry-for",
    type=click.FloatRange(0),
    default=SEND_PATIENCE,
    show_default=True,
    metavar="SECONDS",
    help="While the service answers 503 (its Redis restarting), keep trying this long, with the same "
    "Idempotency-Key; 0 gives up at once.",
)
@api_options
def send_alert(
    *,
    connection: Connection,
    yes: bool,
    watch: bool,
    timeout: float | None,
    idempotency_key: str | None,
    retry_for: float,
    **fields: Any,
) -> None:
    """Send an alert: show its preview (segments, reach, cost), ask for a confirmation, send it once.

    The alert is posted with an Idempotency-Key, so that a retry after a dropped connection,
    or while the service answers 503 (its Redis restarting: it waits, for --retry-for
    seconds), never sends twice. Police send to the PLPs of their zone; coordinators send non-urgent
    messages to their PLPs; non-urgent police advice waits for the coordinators' relay where
    the charter says so. With --watch, the exit status is that of `plp alert watch`.

    \b
    Examples:
      plp alert send --plp parc --urgent --category burglary \\
          --text fr="Cambriolage rue du Parc il y a 10 min, voiture grise 1-ABC-123" \\
          --text nl="Inbraak in de Parkstraat 10 min geleden, grijze wagen 1-ABC-123" --watch
      plp alert send --plp parc --non-urgent --category prevention_advice --text-file texts.yaml --yes
    """
    body = _body(**fields)
    key = idempotency_key or f"plp-cli-{uuid.uuid4()}"

    async def preview(api: ApiClient) -> Any:
        return (
            await api.call("POST", "/v1/alerts/preview", json_body=body, options=ALERT_OPTIONS, patience=retry_for)
        ).body

    estimate = run_api(connection, preview)
    _echo_preview(body, estimate)
    if not yes:
        try:
            confirmed = _confirmed(body, estimate)
        except click.Abort:
            confirmed = False
            click.echo("", err=True)
        if not confirmed:
            raise click.ClickException("not sent: not confirmed (--yes sends without asking)")

    async def send(api: ApiClient) -> Any:
        return await _post_once(api, body, key, patience=retry_for)

    alert = run_api(connection, send)
    _echo_accepted(alert)
    if watch:
        _watch(connection, alert["id"], interval=0.5, timeout=timeout)


async def _post_once(api: ApiClient, body: dict[str, Any], key: str, *, patience: float) -> Any:
    """POST the alert; when the connection drops after the request went out, the API answers 409 (the first
    try is still being stored) or 503 (its Redis is restarting: for ``patience`` seconds), post it again with
    the same Idempotency-Key: the API answers with the same alert, or stores it then."""
    headers = {"Idempotency-Key": key}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    for attempt in range(1, SEND_TRIES + 1):
        try:
            answer = await api.call(
                "POST",
                "/v1/alerts",
                json_body=body,
                headers=headers,
                options=ALERT_OPTIONS,
                allow=frozenset({409}),
                patience=max(0.0, deadline - loop.time()),
            )
        except aiohttp.ClientConnectorError:
            raise  # nothing was sent: the service is not there (said by run_api)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            if attempt == SEND_TRIES:
                raise ApiError(
                    f"the connection dropped while sending ({exc}); the alert may have been accepted: send again "
                    f"with --idempotency-key {key} to be sure it goes once"
                ) from None
        else:
            if answer.status != 409:
                return answer.body
            if attempt == SEND_TRIES:
                raise ApiError(f"{answer.body.get('detail', 'conflict')} (--idempotency-key {key})")
        await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _echo_accepted(alert: dict[str, Any]) -> None:
    click.echo(f"alert {alert['id']} {alert['status']}: {alert['urgency']} {alert['category']}")
    waiting = [r["plp_id"] for r in alert.get("relays", []) if r["state"] == "awaiting"]
    if waiting:
        click.echo(f"waiting for the coordinators of {', '.join(waiting)} to relay it")
    click.echo(f"follow it: plp alert watch {alert['id']}")


@alert_group.command("watch", context_settings=CONTEXT, short_help="Watch an alert live until it is done.")
@click.argument("alert_id")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 60),
    default=0.5,
    show_default=True,
    help="Seconds between two readings of the alert.",
)
@click.option("--timeout", type=click.FloatRange(1), help="Give up after this many seconds (default: never).")
@api_options
def watch(*, connection: Connection, alert_id: str, interval: float, timeout: float | None) -> None:
    """Watch the alert ALERT_ID live: a progress bar per channel, counts per status, the share acknowledged.

    Ends when the alert is finished (completed, expired, cancelled or declined) and prints
    the figures per channel. Exit status: 0 completed; 3 expired, cancelled or declined;
    1 on an error or --timeout. Ctrl-C stops watching; the alert goes on.

    \b
    Example:
      plp alert watch 3f0c9a1e5b7d2c48
    """
    _watch(connection, alert_id, interval=interval, timeout=timeout)


def _watch(connection: Connection, alert_id: str, *, interval: float, timeout: float | None) -> None:
    try:
        final = run_api(connection, lambda api: watch_alert(api, alert_id, interval=interval, timeout=timeout))
    except KeyboardInterrupt:
        click.echo(f"\nstopped watching; the alert goes on. Again: plp alert watch {alert_id}", err=True)
        raise SystemExit(130) from None
    if final["status"] != "completed":
        assert final["status"] in FINISHED
        raise SystemExit(EXIT_PARTIAL)


@alert_group.command("list", context_settings=CONTEXT, short_help="The alerts of your part, newest first.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="At most this many.")
@json_option
@api_options
def list_alerts(*, connection: Connection, limit: int, as_json: bool) -> None:
    """List the alerts of your part, newest first: status, deliveries, acknowledged."""

    async def work(api: ApiClient) -> Any:
        return await api.get("/v1/alerts", params={"limit": limit})

    found = run_api(connection, work)
    if as_json:
        echo_json(found)
        return
    rows = [
        (
            a["id"],
            a["created_at"][:16].replace("T", " "),
            a["urgency"],
            a["category"],
            ",".join(a["plp_ids"]),
            a["status"],
            a["counts"]["total"],
            a["counts"]["acknowledged"],
        )
        for a in found["items"]
    ]
    echo_table(("ID", "CREATED (UTC)", "URGENCY", "CATEGORY", "PLPS", "STATUS", "DELIVERIES", "ACK"), rows)


@alert_group.command("cancel", context_settings=CONTEXT, short_help="Stop every send of an alert not started.")
@click.argument("alert_id")
@click.option("--yes", "-y", is_flag=True, help="Cancel without asking.")
@api_options
def cancel(*, connection: Connection, alert_id: str, yes: bool) -> None:
    """Cancel the alert ALERT_ID: no send that has not started will start (its author, police of the zone, admin)."""
    if not yes and not click.confirm(f"Cancel alert {alert_id}?", default=False):
        raise click.ClickException("not cancelled")

    async def work(api: ApiClient) -> Any:
        return (await api.call("POST", f"/v1/alerts/{alert_id}/cancel")).body

    alert = run_api(connection, work)
    click.echo(f"alert {alert['id']} {alert['status']}")


#: How a refused field of a follow-up is reported: by the option that set it.
FOLLOW_UP_OPTIONS = {"texts": "--text", "kind": "--update/--all-clear"}


@alert_group.command("follow-up", context_settings=CONTEXT, short_help="Send an update or all-clear to those reached.")
@click.argument("alert_id")
@click.option(
    "--update/--all-clear",
    "update",
    default=None,
    help="An update (more about the same event; the alert goes on) or an all-clear (the danger has passed: "
    "the alert's escalations and pending retries end). One of the two is required.",
)
@click.option(
    "--text",
    "texts",
    multiple=True,
    callback=_texts,
    metavar="LANG=TEXT",
    help=f"The message in one language ({', '.join(LANGUAGES)}); repeat per language. Members get theirs, "
    "else the PLP's language.",
)
@click.option(
    "--text-file",
    "text_files",
    multiple=True,
    callback=_text_files,
    metavar="LANG=PATH|PATH",
    help="A language's text from a file (fr=message.txt), or all of them from a JSON/YAML file (fr: ..., nl: ...).",
)
@click.option("--yes", "-y", is_flag=True, help="Send without asking (scripts).")
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Sending again with the same key and message never sends twice (default: a new key each time).",
)
@api_options
def follow_up(
    *,
    connection: Connection,
    alert_id: str,
    update: bool | None,
    texts: dict[str, str],
    text_files: dict[str, str],
    yes: bool,
    idempotency_key: str | None,
) -> None:
    """Send an update or an all-clear of the alert ALERT_ID to exactly the members it reached, each on a channel
    that reached them, in their language (its author, police of its zone, admin).

    An all-clear also ends the alert's escalations and its sends waiting for a retry. A follow-up
    is sent once per Idempotency-Key.

    \b
    Example:
      plp alert follow-up 3f0c9a1e5b7d2c48 --all-clear \\
          --text fr="Le suspect a été arrêté, merci." --text nl="De verdachte werd opgepakt, bedankt."
    """
    if update is None:
        raise click.UsageError("say --update or --all-clear")
    merged = {**text_files, **texts}
    if not merged:
        raise click.UsageError("give the message: --text fr=... (repeat per language) or --text-file")
    kind = "update" if update else "all_clear"
    what = "an update" if update else "an all-clear"
    if not yes and not click.confirm(f"Send {what} of alert {alert_id} to the members it reached?", default=False):
        raise click.ClickException("not sent: not confirmed (--yes sends without asking)")
    headers = {"Idempotency-Key": idempotency_key or f"plp-cli-{uuid.uuid4()}"}
    body = {"kind": kind, "texts": merged}

    async def work(api: ApiClient) -> Any:
        path = f"/v1/alerts/{alert_id}/follow-ups"
        return (await api.call("POST", path, json_body=body, headers=headers, options=FOLLOW_UP_OPTIONS)).body

    sent = run_api(connection, work)
    click.echo(f"follow-up {sent['id']} {sent['status']}: {kind} of alert {alert_id}")
    click.echo(f"follow it: plp alert watch {sent['id']}")
