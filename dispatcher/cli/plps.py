"""``plp plp``, ``plp charter``, ``plp members``, ``plp sectors``: PLPs, their charters, their members and their
sectors, through the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from dispatcher.cli.client import ApiClient, Connection, api_options, run_api
from dispatcher.cli.common import CONTEXT, EXIT_PARTIAL, echo_json, echo_table, json_option, read_document
from dispatcher.core.models import ChannelName, DeliveryMode, Language, MessageClass, PlpKind, RelayMode

CLASSES = [c.value for c in MessageClass]


@click.group("plp", context_settings=CONTEXT, short_help="PLPs: create, list, show.")
def plp_group() -> None:
    """PLPs: create one (admin), list those of your part, show one with its charter."""


@plp_group.command("create", context_settings=CONTEXT, short_help="Create a PLP (admin).")
@click.option("--name", required=True, help="The PLP's name, e.g. 'PLP Quartier du Parc'.")
@click.option("--commune", required=True, help="Its commune.")
@click.option("--zone", required=True, help="Its police zone (the officers of that zone send to it).")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in PlpKind]),
    default=PlpKind.RESIDENTIAL.value,
    show_default=True,
    help="residential, or independents (a PLP-I of shopkeepers).",
)
@click.option(
    "--language",
    type=click.Choice([lang.value for lang in Language]),
    default=Language.FR.value,
    show_default=True,
    help="Language of members who have none of the alert's languages.",
)
@click.option("--timezone", default="Europe/Brussels", show_default=True, help="IANA time zone of its quiet hours.")
@click.option("--reply-to", multiple=True, help="Address members' e-mail replies go to (its coordinators; repeat).")
@click.option(
    "--charter-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Its charter, JSON or YAML (as `plp charter show` prints it); default: the standard charter.",
)
@json_option
@api_options
def create_plp(
    *,
    connection: Connection,
    name: str,
    commune: str,
    zone: str,
    kind: str,
    language: str,
    timezone: str,
    reply_to: tuple[str, ...],
    charter_file: Path | None,
    as_json: bool,
) -> None:
    """Create a PLP (admin token) and print its id, which coordinators' tokens and alerts name.

    \b
    Example:
      plp plp create --name "PLP Quartier du Parc" --commune Uccle --zone 5342 \\
          --reply-to coordination@parc.example.org --charter-file charter.yaml
    """
    body: dict[str, Any] = {
        "name": name,
        "commune": commune,
        "police_zone": zone,
        "kind": kind,
        "default_language": language,
        "timezone": timezone,
        "reply_to": list(reply_to),
    }
    if charter_file is not None:
        body["charter"] = read_document(charter_file, option="--charter-file")
    options = {
        "name": "--name",
        "commune": "--commune",
        "police_zone": "--zone",
        "timezone": "--timezone",
        "reply_to": "--reply-to",
        "charter": "--charter-file",
    }

    async def work(api: ApiClient) -> Any:
        return (await api.call("POST", "/v1/plps", json_body=body, options=options)).body

    plp = run_api(connection, work)
    if as_json:
        echo_json(plp)
        return
    click.echo(f"created PLP {plp['id']}: {plp['name']} ({plp['commune']}, police zone {plp['police_zone']})")
    click.echo(f"next: plp token issue --name NAME --role coordinator --plp {plp['id']}")


@plp_group.command("list", context_settings=CONTEXT, short_help="The PLPs of your part.")
@click.option("--search", "-q", "search", help="Only PLPs whose name or commune contains this.")
@json_option
@api_options
def list_plps(*, connection: Connection, search: str | None, as_json: bool) -> None:
    """List the PLPs of your part (police: your zone; coordinators: yours; admin: all), by name."""

    async def work(api: ApiClient) -> Any:
        return await api.get("/v1/plps", params={"q": search} if search else None, options={"q": "--search"})

    found = run_api(connection, work)
    if as_json:
        echo_json(found)
        return
    rows = [(p["id"], p["name"], p["commune"], p["police_zone"], p["kind"]) for p in found["items"]]
    echo_table(("ID", "NAME", "COMMUNE", "ZONE", "KIND"), rows)


@plp_group.command("show", context_settings=CONTEXT, short_help="A PLP and its charter.")
@click.argument("plp_id")
@json_option
@api_options
def show_plp(*, connection: Connection, plp_id: str, as_json: bool) -> None:
    """Show the PLP PLP_ID and, per message class, how its charter reaches members."""

    async def work(api: ApiClient) -> Any:
        return await api.get(f"/v1/plps/{plp_id}")

    plp = run_api(connection, work)
    if as_json:
        echo_json(plp)
        return
    click.echo(f"{plp['id']}: {plp['name']} ({plp['commune']}, police zone {plp['police_zone']}, {plp['kind']})")
    click.echo(f"language {plp['default_language']}, time zone {plp['timezone']}")
    click.echo(f"replies to: {', '.join(plp['reply_to']) or '-'}")
    _echo_charter(plp["charter"])


def _echo_charter(charter: dict[str, Any]) -> None:
    relay = "after a coordinator approves" if charter["relay"] == RelayMode.COORDINATOR else "at once"
    click.echo(f"charter: police advice goes out {relay} (relay {charter['relay']})")
    for name in CLASSES:
        plan = charter[name]
        quiet = plan.get("quiet_hours")
        parts = [
            f"{', '.join(plan['channels'])} ({plan['mode']})",
            f"ttl {plan['ttl_seconds']} s",
            f"quiet hours {quiet['start']}-{quiet['end']}" if quiet else "no quiet hours",
        ]
        if plan.get("escalate_after_seconds"):
            parts.append(f"escalate to {plan['escalate_to']} after {plan['escalate_after_seconds']} s")
        if plan.get("ack_threshold"):
            parts.append(f"check {plan['ack_threshold']:.0%} acknowledged after {plan['ack_check_after_seconds']} s")
        click.echo(f"  {name:<16} " + "; ".join(parts))
    if "area_reaches_unlocated" in charter:
        whether = "reach" if charter["area_reaches_unlocated"] else "leave out"
        click.echo(f"alerts to part of the PLP {whether} the members whose place is unknown")


@click.group("charter", context_settings=CONTEXT, short_help="A PLP's charter: show it, set it.")
def charter_group() -> None:
    """A PLP's charter: who gets what over which channels. Show it, or set it from a file or options."""


@charter_group.command("show", context_settings=CONTEXT, short_help="Print a charter as YAML or JSON.")
@click.argument("plp_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="YAML or JSON; either can be edited and given back to `plp charter set --file`.",
)
@api_options
def show_charter(*, connection: Connection, plp_id: str, fmt: str) -> None:
    """Print the charter of the PLP PLP_ID as a document to edit."""
    import yaml

    async def work(api: ApiClient) -> Any:
        return await api.get(f"/v1/plps/{plp_id}")

    charter = run_api(connection, work)["charter"]
    if fmt == "json":
        echo_json(charter)
    else:
        click.echo(yaml.safe_dump(charter, sort_keys=False, allow_unicode=True), nl=False)


def _class_value(option: str, allowed: list[str] | None = None) -> Any:
    """A click callback parsing repeated ``CLASS=VALUE`` options into a dict (CLASS: urgent, non_urgent...)."""

    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
        found: dict[str, str] = {}
        for value in values:
            name, sep, rest = value.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in CLASSES:
                raise click.BadParameter(f"{value!r}: write CLASS=VALUE, CLASS one of {', '.join(CLASSES)}")
            if allowed is not None and rest not in allowed:
                raise click.BadParameter(f"{value!r}: the value is one of {', '.join(allowed)}")
            found[name] = rest.strip()
        return found

    return parse


@charter_group.command("set", context_settings=CONTEXT, short_help="Set a charter from a file or options.")
@click.argument("plp_id")
@click.option(
    "--file",
    "charter_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The whole charter, JSON or YAML (`plp charter show` prints one); classes left out get the defaults.",
)
@click.option(
    "--relay",
    type=click.Choice([r.value for r in RelayMode]),
    help="Police advice: auto (at once) or coordinator (after a coordinator approves).",
)
@click.option(
    "--channels",
    multiple=True,
    callback=_class_value("--channels"),
    metavar="CLASS=LIST",
    help=f"Channels in order, comma-separated, e.g. urgent=sms,voice ({', '.join(c.value for c in ChannelName)}).",
)
@click.option(
    "--mode",
    multiple=True,
    callback=_class_value("--mode", [m.value for m in DeliveryMode]),
    metavar="CLASS=MODE",
    help="all (every channel) or first_that_works (the next only if one fails), e.g. non_urgent=first_that_works.",
)
@click.option(
    "--ttl",
    multiple=True,
    callback=_class_value("--ttl"),
    metavar="CLASS=SECONDS",
    help="Nothing of that class is sent after this, e.g. urgent=7200.",
)
@click.option(
    "--quiet-hours",
    multiple=True,
    callback=_class_value("--quiet-hours"),
    metavar="CLASS=HH:MM-HH:MM",
    help="Hold messages of that class during these local hours, e.g. non_urgent=21:00-08:00; CLASS=none: never.",
)
@click.option(
    "--unlocated",
    type=click.Choice(["reached", "left-out"]),
    help="Alerts to part of the PLP (sectors, a circle, streets) reach the members whose place is unknown, "
    "counted apart (reached, the default), or leave them out.",
)
@json_option
@api_options
def set_charter(
    *,
    connection: Connection,
    plp_id: str,
    charter_file: Path | None,
    relay: str | None,
    unlocated: str | None,
    channels: dict[str, str],
    mode: dict[str, str],
    ttl: dict[str, str],
    quiet_hours: dict[str, str],
    as_json: bool,
) -> None:
    """Replace the charter of the PLP PLP_ID (admin, or its coordinators).

    Starts from --file if given, else from the current charter, and applies the options.
    CLASS is urgent, non_urgent or police_feedback.

    \b
    Examples:
      plp charter show parc > charter.yaml; $EDITOR charter.yaml; plp charter set parc --file charter.yaml
      plp charter set parc --relay auto --channels urgent=sms,voice,email --mode urgent=all
      plp charter set parc --quiet-hours non_urgent=22:00-07:30 --ttl non_urgent=86400
      plp charter set parc --unlocated left-out
    """
    changes = {"channels": channels, "mode": mode, "ttl": ttl, "quiet_hours": quiet_hours}
    if charter_file is None and relay is None and unlocated is None and not any(changes.values()):
        raise click.UsageError("nothing to set: give --file, or at least one of the options (see --help)")
    base = read_document(charter_file, option="--file") if charter_file is not None else None
    if base is not None and not isinstance(base, dict):
        raise click.BadParameter(f"{charter_file} does not hold a charter (a mapping)", param_hint="--file")
    options = {"relay": "--relay", "area_reaches_unlocated": "--unlocated"}
    for name in CLASSES:
        options |= {
            f"{name}.channels": f"--channels {name}=...",
            f"{name}.mode": f"--mode {name}=...",
            f"{name}.ttl_seconds": f"--ttl {name}=...",
            f"{name}.quiet_hours": f"--quiet-hours {name}=...",
        }

    async def work(api: ApiClient) -> Any:
        charter = base if base is not None else (await api.get(f"/v1/plps/{plp_id}"))["charter"]
        charter = _changed(charter, relay=relay, **changes)
        if unlocated is not None:
            charter["area_reaches_unlocated"] = unlocated == "reached"
        return await api.call("PUT", f"/v1/plps/{plp_id}/charter", json_body=charter, options=options)

    plp = run_api(connection, work).body
    if as_json:
        echo_json(plp)
        return
    click.echo(f"charter of {plp['id']} set")
    _echo_charter(plp["charter"])


def _changed(charter: dict[str, Any], *, relay: str | None, **per_class: dict[str, str]) -> dict[str, Any]:
    """The charter with the options' changes; values are checked by the API, which names the field."""
    charter = {**charter, **({"relay": relay} if relay else {})}
    for name in CLASSES:
        plan = dict(charter.get(name) or {})
        if name in per_class["channels"]:
            plan["channels"] = [c.strip() for c in per_class["channels"][name].split(",") if c.strip()]
        if name in per_class["mode"]:
            plan["mode"] = per_class["mode"][name]
        if name in per_class["ttl"]:
            plan["ttl_seconds"] = _seconds(per_class["ttl"][name], f"--ttl {name}")
        if name in per_class["quiet_hours"]:
            plan["quiet_hours"] = _quiet_hours(per_class["quiet_hours"][name], name)
        if plan:
            charter[name] = plan
    return charter


def _seconds(value: str, option: str) -> int:
    if not value.isdigit():
        raise click.BadParameter(f"{value!r} is not a number of seconds", param_hint=option)
    return int(value)


def _quiet_hours(value: str, name: str) -> dict[str, str] | None:
    if value.lower() == "none":
        return None
    found = re.fullmatch(r"(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})", value)
    if not found:
        raise click.BadParameter(f"{value!r}: write HH:MM-HH:MM, e.g. 21:00-08:00", param_hint="--quiet-hours")
    return {"start": found[1].zfill(5), "end": found[2].zfill(5)}


@click.group("members", context_settings=CONTEXT, short_help="A PLP's members: import a sheet, list.")
def members_group() -> None:
    """A PLP's members (admin, or its coordinators): import a sheet (CSV or Excel), list them."""


@members_group.command("import", context_settings=CONTEXT, short_help="Import a CSV or Excel sheet, with a row report.")
@click.argument("plp_id")
@click.argument("file", type=click.File("rb"))
@click.option("--sheet", "sheet_name", metavar="NAME", help="The workbook's sheet (tab) to read; default: the first.")
@click.option("--dry-run", is_flag=True, help="Check every row and print the same report, writing nothing.")
@json_option
@api_options
def import_members(
    *, connection: Connection, plp_id: str, file: Any, sheet_name: str | None, dry_run: bool, as_json: bool
) -> None:
    """Import the members of FILE (- for standard input) into the PLP PLP_ID; print the row report.

    FILE is a CSV as any spreadsheet saves it (separated by , ; or tab; UTF-8, UTF-16 or
    Windows-1252) or an Excel workbook (.xlsx). Columns: name (or first name and name), phone,
    email, language, channels, consent_at, and where the member lives: street, number, postcode,
    commune, lat, lon (without lat and lon, the geocoder locates them in the background), named in
    English, French, Dutch or German. Each
    row is checked on its own: a bad row is reported with its line of the sheet and the reason
    and never drops its neighbours. Someone already a member elsewhere (same phone or e-mail)
    is linked, not duplicated. Exit status 0 when every row was imported, 3 when some were rejected.

    \b
    Example (a sheet saved by Excel as "CSV (separator: ;)"):
      Nom;Téléphone;E-mail;Langue;Canaux
      Anne Dubois;0470 12 34 56;anne@example.org;fr;sms, e-mail
    \b
      plp members import parc members.csv --dry-run   # the report, nothing written
      plp members import parc members.xlsx --sheet Membres
    """
    from dispatcher.people.sheets import media_type_of  # the sheet module loads openpyxl: only for this command

    data = file.read()
    query = {"dry_run": "true"} if dry_run else {}
    query |= {"sheet": sheet_name} if sheet_name else {}

    async def work(api: ApiClient) -> Any:
        path = f"/v1/plps/{plp_id}/members/import"
        return (
            await api.call("POST", path, text_body=data, content_type=media_type_of(data), params=query or None)
        ).body

    report = run_api(connection, work)
    if as_json:
        echo_json(report)
    else:
        _echo_import_report(report, dry_run=dry_run)
    if report["rejected"]:
        raise SystemExit(EXIT_PARTIAL)


def _echo_import_report(report: dict[str, Any], *, dry_run: bool) -> None:
    imported, rejected, source = report["imported"], report["rejected"], report.get("source") or {}
    linked = sum(1 for row in imported if row["existing"])
    total = len(imported) + len(rejected)
    click.echo(
        ("dry run, nothing written: would import" if dry_run else "imported")
        + f" {len(imported)} of {total} rows"
        + (f" ({linked} already members of another PLP, linked)" if linked else "")
    )
    if rejected:
        header = source.get("header_row", 1)
        click.echo(f"rejected {len(rejected)} rows (line numbers of the sheet, the header is line {header}):")
        for row in rejected:
            reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in row["errors"])
            click.echo(f"  line {row['row']}: {reasons}")
    if source:
        click.echo(_how_read(source))


def _how_read(source: dict[str, Any]) -> str:
    if source["format"] == "xlsx":
        others = [repr(name) for name in source["sheets"] if name != source["sheet"]]
        also = f" (other sheets: {', '.join(others)}; pick one with --sheet)" if others else ""
        return f"read the workbook's sheet {source['sheet']!r}{also}"
    separator = {"\t": "tabs"}.get(source["delimiter"], repr(source["delimiter"]))
    return f"read as CSV in {source['encoding']}, separated by {separator}"


@members_group.command("list", context_settings=CONTEXT, short_help="A PLP's members, their channels and places.")
@click.argument("plp_id")
@click.option("--sector", metavar="SECTOR_ID|none", help="Only the members of this sector, or (none) of no sector.")
@click.option("--not-located", is_flag=True, help="Only the members without a known position (with the reason).")
@json_option
@api_options
def list_members(*, connection: Connection, plp_id: str, sector: str | None, not_located: bool, as_json: bool) -> None:
    """List the members of the PLP PLP_ID: name, language, channels, status, channels that do not work, and
    their place: their sector, or why they could not be located."""
    filters: dict[str, str] = {"sector": sector} if sector else {}
    filters |= {"located": "false"} if not_located else {}

    async def work(api: ApiClient) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 1000, **filters, **({"cursor": cursor} if cursor else {})}
            page = await api.get(f"/v1/plps/{plp_id}/members", params=params)
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    members = run_api(connection, work)
    if as_json:
        echo_json({"items": members})
        return
    rows = [
        (
            m["id"],
            m["name"],
            m["language"],
            ",".join(m["channels"]),
            m["status"],
            ", ".join(f"{channel}: {why}" for channel, why in (m.get("unusable") or {}).items()) or "-",
            _place(m),
        )
        for m in members
    ]
    echo_table(("ID", "NAME", "LANGUAGE", "CHANNELS", "STATUS", "NOT WORKING", "PLACE"), rows)
    click.echo(f"{len(members)} members")


def _place(member: dict[str, Any]) -> str:
    """The member's sector, or where the search for their position stands (and why it failed)."""
    if member.get("sector_id"):
        return f"sector {member['sector_id']}"
    locating = member.get("locating") or {"state": "no_address"}
    if locating["state"] == "located":
        return "located, no sector"
    return locating["state"] + (f": {locating['reason']}" if locating.get("reason") else "")


@click.group("sectors", context_settings=CONTEXT, short_help="A PLP's sectors: list, import GeoJSON, delete.")
def sectors_group() -> None:
    """A PLP's sectors (admin, or its coordinators; the police of its zone may list them): list them, import a
    GeoJSON file of them, delete one."""


@sectors_group.command("list", context_settings=CONTEXT, short_help="A PLP's sectors, by name.")
@click.argument("plp_id")
@json_option
@api_options
def list_sectors(*, connection: Connection, plp_id: str, as_json: bool) -> None:
    """List the sectors of the PLP PLP_ID: id, name, shape, streets."""

    async def work(api: ApiClient) -> Any:
        return await api.get(f"/v1/plps/{plp_id}/sectors")

    found = run_api(connection, work)
    if as_json:
        echo_json(found)
        return
    rows = [
        (s["id"], s["name"], (s.get("geometry") or {}).get("type", "-"), ", ".join(s["streets"]) or "-")
        for s in found["items"]
    ]
    echo_table(("ID", "NAME", "SHAPE", "STREETS"), rows)
    click.echo(f"{len(rows)} sectors")


@sectors_group.command("import", context_settings=CONTEXT, short_help="Import sectors from a GeoJSON file.")
@click.argument("plp_id")
@click.argument("file", type=click.File("rb"))
@json_option
@api_options
def import_sectors(*, connection: Connection, plp_id: str, file: Any, as_json: bool) -> None:
    """Import the sectors of FILE (a GeoJSON FeatureCollection, - for standard input) into the PLP PLP_ID: each
    feature a sector named by its properties.name, with its streets in properties.streets. All of them are
    imported, or none: a bad shape is refused saying which feature, where and what.

    
    Example (a file exported from QGIS or geojson.io):
      plp sectors import parc sectors.geojson
    """
    import json

    try:
        collection = json.loads(file.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"not a JSON file: {exc}", param_hint="FILE") from None

    async def work(api: ApiClient) -> Any:
        return (await api.call("POST", f"/v1/plps/{plp_id}/sectors/import", json_body=collection)).body

    done = run_api(connection, work)
    if as_json:
        echo_json(done)
        return
    for sector in done["items"]:
        click.echo(f"sector {sector['id']} {sector['name']!r} imported")


@sectors_group.command("delete", context_settings=CONTEXT, short_help="Delete one of a PLP's sectors.")
@click.argument("plp_id")
@click.argument("sector_id")
@api_options
def delete_sector(*, connection: Connection, plp_id: str, sector_id: str) -> None:
    """Delete the sector SECTOR_ID of the PLP PLP_ID (members set in it by hand follow their place again)."""

    async def work(api: ApiClient) -> Any:
        return (await api.call("DELETE", f"/v1/plps/{plp_id}/sectors/{sector_id}")).body

    run_api(connection, work)
    click.echo(f"sector {sector_id} deleted")
