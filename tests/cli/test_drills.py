"""``plp drills``: a PLP's recurring drills scheduled, listed and deleted through the real API."""

from __future__ import annotations

import re

from tests.cli.conftest import PlpCommand, Scene


def test_a_coordinator_schedules_lists_and_deletes_a_monthly_drill(api: PlpCommand, scene: Scene) -> None:
    """The first Monday at 18:00: scheduled non-urgent, listed with its next time; an urgent one is refused to a
    coordinator with the API's reason; deleted by its id."""
    coordinator = scene.token("coordinator")
    args = ("drills", "schedule", "parc", "--monthly", "1", "--on", "monday", "--at", "18:00", "--text", "fr=Exercice")
    out = api.ok(*args, **coordinator).output
    found = re.search(r"^drill (\w+) scheduled: next 20\d\d-\d\d-\d\dT\d\d:00:00Z$", out, re.MULTILINE)
    assert found, out
    refused = api(*args, "--urgent", **coordinator)
    assert refused.exit_code != 0 and "coordinators send non-urgent messages" in refused.output
    neither = api("drills", "schedule", "parc", "--on", "monday", "--at", "18:00", "--text", "fr=X", **coordinator)
    assert neither.exit_code != 0 and "--monthly N or --weekly" in neither.output
    listed = api.ok("drills", "list", "parc", **scene.token("police")).output
    assert re.search(rf"^{found.group(1)}\s+non_urgent\s+monthly, #1 monday 18:00\s", listed, re.MULTILINE), listed
    assert "deleted" in api.ok("drills", "delete", "parc", found.group(1), **coordinator).output
    assert "0 drills" in api.ok("drills", "list", "parc", **coordinator).output
