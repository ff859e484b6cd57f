"""``plp``: run the service, and operate it from a terminal.

Two kinds of commands, registered below:

- running and bootstrapping the service, directly on Redis: ``dev``, ``web``, ``worker``,
  ``clock``, ``supervise``, ``purge``, ``telegram-webhook``, ``token``, ``status``, ``data``, ``probe``;
- acting for a person, through the HTTP API with a bearer token (so roles, validation,
  audit and idempotency are the API's): ``plp``, ``charter``, ``members``, ``sectors``, ``alert``,
  ``feedback``, ``report``.

May import: ``config``, ``channels``, ``workers``, ``dispatcher.core``, ``dispatcher.storage``,
``dispatcher.access``, ``dispatcher.reports``, ``dispatcher.pipeline``, ``dispatcher.people``,
``dispatcher.operations``, ``dispatcher.api``, ``dispatcher.geo``.
"""

from __future__ import annotations

import click

from dispatcher.cli.alerts import alert_group
from dispatcher.cli.common import CONTEXT
from dispatcher.cli.data import data_group
from dispatcher.cli.drills import drills_group
from dispatcher.cli.feedback import feedback_group
from dispatcher.cli.plps import charter_group, members_group, plp_group, sectors_group
from dispatcher.cli.report import report
from dispatcher.cli.service import clock, dev, purge, serve_web, supervise, telegram_webhook, worker
from dispatcher.cli.status import probe, status
from dispatcher.cli.tokens import token


class InOrder(click.Group):
    """A group that lists its commands in the order they were added (by use), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=InOrder, context_settings=CONTEXT)
@click.version_option(package_name="plp-dispatch", message="%(prog)s %(version)s")
def main() -> None:
    """plp-dispatch: alerts from the police to the members of Local Prevention Partnerships.

    Commands that act for a person (plp, charter, members, sectors, drills, alert, feedback, report) call the
    service's API with a bearer token: --api / PLP_API_URL (default http://127.0.0.1:8080) and
    --token / PLP_TOKEN. Without a token they use the demo tokens `plp dev` wrote. The others
    work on Redis directly (REDIS_URL, or the embedded Redis in PLP_DATA_DIR).

    \b
    A first session:
      plp dev                                   # in one terminal: the whole service, with a demo PLP
      plp alert send --plp demo --urgent --category burglary --text fr="Cambriolage rue du Parc" --watch
      plp status                                # queues, workers, clock, provider limits
    """


COMMANDS: list[click.Command] = [
    dev,
    serve_web,
    worker,
    clock,
    supervise,
    status,
    probe,
    token,
    plp_group,
    charter_group,
    members_group,
    sectors_group,
    drills_group,
    alert_group,
    feedback_group,
    report,
    purge,
    data_group,
    telegram_webhook,
]
for command in COMMANDS:
    main.add_command(command)

__all__ = ["main"]
