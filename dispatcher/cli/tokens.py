"""``plp token``: bearer tokens issued, listed and revoked directly in Redis (the operator's bootstrap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from config.settings import MAX_TOKEN_TTL_DAYS
from dispatcher.access.audit import Action
from dispatcher.cli.common import CONTEXT, cli_settings, echo_table, with_store
from dispatcher.core.models import Actor, ActorIn, Role

if TYPE_CHECKING:
    from dispatcher.storage.records import NewToken, TokenRecord
    from dispatcher.storage.store import Store


@click.group(context_settings=CONTEXT, short_help="Bearer tokens: issue, list, revoke (on Redis).")
def token() -> None:
    """Bearer tokens: issue, list, revoke (directly in Redis; shown once, stored only as a hash).

    These commands work on the Redis of REDIS_URL (or the embedded one), without the API:
    they are how the first admin gets a token. Every change is in the audit log as actor "cli".
    """


async def _audit(store: Store, action: Action, **target: str) -> None:
    """The command line's entry in the audit log (actor "cli", role "operator")."""
    from dispatcher.access import audit

    await audit.record(store.redis, store.keys, actor=None, action=action, target=target)


@token.command("issue", context_settings=CONTEXT, short_help="Print a new token, once.")
@click.option("--actor", "actor_id", help="Issue another token to this existing actor (instead of --name, --role).")
@click.option("--name", help="Who the token is for: creates a new actor.")
@click.option("--role", type=click.Choice([r.value for r in Role]), help="The new actor's role.")
@click.option("--zone", help="Police zone (police officers: they send to the PLPs of their zone).")
@click.option("--plp", "plps", multiple=True, help="PLP id (coordinators; repeat for several).")
@click.option("--email", help="The new actor's e-mail address: they can then sign in to the console by e-mailed link.")
@click.option(
    "--ttl-days",
    type=click.IntRange(1, MAX_TOKEN_TTL_DAYS),
    help="Validity in days (default PLP_TOKEN_TTL_DAYS, 90).",
)
def issue(
    actor_id: str | None,
    name: str | None,
    role: str | None,
    zone: str | None,
    plps: tuple[str, ...],
    email: str | None,
    ttl_days: int | None,
) -> None:
    """Create an actor with a role (or take an existing one) and print a new token, once.

    \b
    Examples:
      plp token issue --name "Admin" --role admin
      plp token issue --name "Inspecteur Dubois" --role police --zone 5340 --ttl-days 30
      plp token issue --name "Marie Peeters" --role coordinator --plp parc --plp gare
      plp token issue --name "Jan Claes" --role coordinator --plp parc --email jan@plp-parc.example
      plp token issue --actor 3f0c9a1e5b7d2c48
    """
    from dispatcher.people.accounts import open_account

    if actor_id is not None and (name or role or email):
        raise click.UsageError("--actor issues to an existing actor: leave out --name, --role and --email")
    if actor_id is None and not (name and role):
        raise click.UsageError("give --name and --role for a new actor, or --actor ID for an existing one")
    data = None
    if actor_id is None:
        assert name and role  # checked above
        try:
            data = ActorIn(name=name, role=Role(role), police_zone=zone, plp_ids=list(plps), email=email)
        except ValidationError as exc:
            raise click.ClickException(exc.errors()[0]["msg"]) from None
    settings = cli_settings()
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
        actor, new = with_store(settings, work)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"actor {actor.id} ({actor.role.value})\n"
        f"token id {new.record.id}, expires {new.record.expires_at:%Y-%m-%d %H:%M} UTC\n"
        f"token (shown once, keep it secret): {new.secret}"
    )


@token.command("list", context_settings=CONTEXT, short_help="Tokens and their status, never secrets.")
@click.option("--actor", "actor_id", help="Only this actor's tokens.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True, help="At most this many.")
def list_tokens(actor_id: str | None, limit: int) -> None:
    """List tokens, newest first: id, actor, role, issued, expires, status. Never the secrets."""
    from dispatcher.storage.store import now_ts

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
        for record, actor in with_store(cli_settings(), work)
    ]
    echo_table(("TOKEN", "ACTOR", "NAME", "ROLE", "ISSUED (UTC)", "EXPIRES (UTC)", "STATUS"), rows)


@token.command("revoke", context_settings=CONTEXT, short_help="Revoke a token at once.")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke the token TOKEN_ID (tok_..., from `plp token list`): the API refuses it from the next request on."""

    async def work(store: Store) -> TokenRecord | None:
        record = await store.revoke_token(token_id)
        if record is not None:
            await _audit(store, Action.TOKEN_REVOKED, actor=record.actor_id, token=record.id)
        return record

    record = with_store(cli_settings(), work)
    if record is None:
        raise click.ClickException(f"no token {token_id!r}")
    click.echo(f"revoked {record.id} of actor {record.actor_id}")
