"""``plp feedback list``: members' replies per alert or per PLP, newest first, names for coordinators only."""

from __future__ import annotations

import asyncio
import re

from dispatcher.core.models import ChannelName
from dispatcher.pipeline.receipts import Receipts
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.cli.conftest import PlpCommand, Scene
from tests.support import run_queued

URGENT = ("--plp", "parc", "--urgent", "--category", "burglary", "--text", "fr=Cambriolage rue du Parc")


async def _sent_and_answered(runtime: Runtime, scene: Scene, replies: list[tuple[str, str]]) -> None:
    """Run the queued alert's sends in this process, then record the members' SMS replies (as the webhook does)."""
    await run_queued(runtime)
    redis = runtime.async_redis()
    try:
        store = Store(redis, runtime.keys)
        for name, text in replies:
            member = await store.get_member(scene.members[name])
            assert member is not None
            await Receipts(store).reply(member, ChannelName.SMS, text)
    finally:
        await redis.aclose()


def test_replies_to_an_alert_are_listed_newest_first(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """Coordinators see who wrote what, about which alert; the police see member ids only."""
    sent = api.ok("alert", "send", *URGENT, "--yes", **scene.token("police")).output
    found = re.search(r"^alert (\w+) accepted", sent, re.MULTILINE)
    assert found, sent
    alert_id = found.group(1)
    replies = [
        ("Anne Dubois", "Voiture grise vue rue des Fleurs"),
        ("Karim Benali", "Deux hommes\ncourant vers la gare"),
    ]
    asyncio.run(_sent_and_answered(runtime, scene, replies))
    shown = api.ok("feedback", "list", "--alert", alert_id, **scene.token("coordinator")).output.splitlines()
    karim, anne = scene.members["Karim Benali"], scene.members["Anne Dubois"]
    assert re.fullmatch(rf"\S+ \S+ UTC  sms  Karim Benali \({karim}\), about alert {alert_id}", shown[0])
    assert shown[1:3] == ["    Deux hommes", "    courant vers la gare"]
    assert re.fullmatch(rf"\S+ \S+ UTC  sms  Anne Dubois \({anne}\), about alert {alert_id}", shown[3])
    assert shown[4] == "    Voiture grise vue rue des Fleurs"
    assert shown[-1] == "2 replies"
    police = api.ok("feedback", "list", "--plp", "parc", "--limit", "1", **scene.token("police")).output
    assert f"sms  {karim}, about alert {alert_id}" in police and "Karim Benali" not in police
    assert police.strip().endswith("1 replies (more with --limit)")


def test_a_reply_cannot_drive_the_terminal(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """Escape sequences a member wrote are shown as replacement characters, never passed to the terminal."""
    api.ok("alert", "send", *URGENT, "--yes", **scene.token("police"))
    asyncio.run(_sent_and_answered(runtime, scene, [("Anne Dubois", "vu \x1b[2J\x1b]0;pwned\x07 ici")]))
    shown = api.ok("feedback", "list", "--plp", "parc", **scene.token("coordinator")).output
    assert "\x1b" not in shown and "\x07" not in shown
    assert "vu \ufffd[2J\ufffd]0;pwned\ufffd ici" in shown


def test_feedback_needs_one_of_plp_or_alert(api: PlpCommand, scene: Scene) -> None:
    """Neither or both of --plp and --alert is a usage error; a PLP outside the caller's part is not allowed."""
    for args in ([], ["--plp", "parc", "--alert", "x"]):
        result = api("feedback", "list", *args, **scene.token("coordinator"))
        assert result.exit_code == 2 and "give either --plp or --alert" in result.output
    refused = api("feedback", "list", "--plp", "parc", **scene.token("police_elsewhere"))
    assert refused.exit_code == 1 and refused.output.startswith("Error: not allowed: ")
