"""Sending an alert from the console while the service's Redis dies and comes back, in a real Chromium.

The stage here has a Redis of its own (AOF, ``appendfsync always``), reached through a relay
that cuts the alert's transaction after its EXEC and kills the server there
(``tests.redis_cut``): Redis stored the alert, the web never heard so and answers 503. The
console says it waits and sends again with the same Idempotency-Key; the test starts Redis
again (and the workers that died with it, as a supervisor would) once the console says so.
Promise under test: once, not twice.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import sign_in
from tests.console.stage import Stage, open_stage
from tests.redis_cut import Cut, RedisCut
from tests.support import RedisServer, Workers
from tests.world import TEXTS

PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]


@dataclass
class Outage:
    stage: Stage
    server: RedisServer
    relay: RedisCut


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """A stage on a Redis of its own, behind the relay."""
    server = RedisServer(tmp_path_factory.mktemp("outage-redis"), args=PERSISTENT)
    server.start()
    try:
        with RedisCut(server.port) as relay, open_stage(relay.url, tmp_path_factory.mktemp("outage")) as stage:
            yield Outage(stage, server, relay)
    finally:
        server.stop()


def test_an_alert_sent_while_redis_dies_is_retried_by_the_console_and_arrives_once(page: Page, outage: Outage) -> None:
    """Redis dies right after it stored the alert: the console shows that it waits and tries again with the same
    key; once Redis is back it opens the alert, which exists once and reaches each member once per channel."""
    stage, server, relay = outage.stage, outage.server, outage.relay
    sign_in(page, stage, "police")
    page.get_by_label("PLP Parc").check()
    for language, name in (("fr", "French"), ("nl", "Dutch"), ("de", "German")):
        page.get_by_role("textbox", name=name).fill(TEXTS[language])
    expect(page.locator("#members-reached")).to_have_text("4")
    page.get_by_role("button", name="Send alert").click()
    dialog = page.get_by_role("dialog", name="Send this urgent alert now?")
    expect(dialog).to_be_visible()

    queue = f"rq:queue:{stage.settings.urgent_queue}".encode()  # in the transaction that enqueues the alert
    relay.arm(Cut.AFTER_EXEC, server.kill, containing=queue)
    dialog.get_by_role("button", name="Yes, send now").click()
    expect(page.get_by_role("status")).to_contain_text("Trying again in")
    assert relay.done.is_set()
    server.start()
    workers = Workers(stage.settings, python=sys.executable)  # those of the stage died with Redis
    try:
        for lane in ("urgent", "general", "clock"):
            workers.start(lane)
        expect(page).to_have_url(re.compile(r"#/alerts/[0-9a-f]{16}$"), timeout=60_000)
        alert_id = page.url.rsplit("/", 1)[1]
        assert [a["id"] for a in stage.api("GET", "/v1/alerts", who="police")["items"]] == [alert_id]
        expect(page.locator(".alert-head .badge.status-completed")).to_have_text("Completed", timeout=60_000)
        expect(page.locator("#figure-handed .value")).to_have_text("11 / 11")
    finally:
        workers.stop()
    assert len(stage.twilio.messages) == 3 and len(stage.twilio.calls) == 3
    assert not stage.twilio.duplicates() and not stage.smtp.duplicates() and not stage.telegram.duplicates()
