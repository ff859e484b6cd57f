"""``plp alert``: preview, send with a confirmation, watch live to the end, list, cancel, through the real API and
real worker processes."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path

from dispatcher.core.models import ChannelName
from dispatcher.pipeline.receipts import Receipts
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store
from tests.cli.conftest import PlpCommand, Scene
from tests.support import Workers, free_port

URGENT = ("--plp", "parc", "--urgent", "--category", "burglary", "--text", "fr=Cambriolage rue du Parc, voiture grise")
ADVICE = ("--plp", "parc", "--non-urgent", "--category", "prevention_advice", "--text", "fr=Fermez vos fenêtres")
ALERT_ID = re.compile(r"^alert (\w+) accepted", re.MULTILINE)


def alert_ids(runtime: Runtime) -> list[str]:
    return sorted(k.split(":")[2] for k in runtime.sync_redis.scan_iter(match="plptest:alert:*:state"))


def accepted_id(output: str) -> str:
    found = ALERT_ID.search(output)
    assert found, output
    return found.group(1)


def channel_rows(output: str) -> dict[str, list[str]]:
    """The summary's table: channel -> [total, delivered, sent, outbox, failed, expired, cancelled, sending, queued]."""
    header = next(i for i, line in enumerate(output.splitlines()) if line.startswith("CHANNEL "))
    rows = {}
    for line in output.splitlines()[header + 1 :]:
        cells = line.split()
        rows[cells[0]] = cells[1:]
        if cells[0] == "all":  # the last row
            return rows
    raise AssertionError(output)


def test_the_preview_shows_segments_reach_and_cost(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """``alert preview`` prints each language's SMS with its encoding and segments, the members reached per
    channel and the estimated cost; nothing is sent."""
    result = api.ok("alert", "preview", *URGENT, "--text", "nl=Inbraak in de Parkstraat", **scene.token("police"))
    out = result.output
    assert out.startswith("URGENT alert (burglary) to parc\n")
    assert re.search(r"^  fr  gsm7, 1 segment:\n      Cambriolage rue du Parc, voiture grise\n", out, re.MULTILINE)
    assert re.search(r"^  nl  gsm7, 1 segment:\n      Inbraak in de Parkstraat\n", out, re.MULTILINE)
    assert "Members reached: 3 (unreachable 0, opted out 0)" in out
    assert "Deliveries by channel: email 2, sms 2, voice 2" in out
    assert "Estimated cost: 0.40 EUR (2 SMS segments, 2 call minutes)" in out  # 2 x 0.08 + 2 x 0.12
    assert alert_ids(runtime) == []
    as_json = json.loads(api.ok("alert", "preview", *URGENT, "--json", **scene.token("police")).stdout)
    assert as_json["members_reached"] == 3


def test_the_preview_counts_apart_the_members_who_decline_non_urgent_messages(
    api: PlpCommand, scene: Scene, runtime: Runtime
) -> None:
    """Anne chose, on her own page, no non-urgent messages: the advice's preview leaves her out and says so; the
    urgent alert's counts her."""

    async def decline() -> None:
        redis = runtime.async_redis()
        try:
            store = Store(redis, runtime.keys)
            anne = await store.get_member(scene.members["Anne Dubois"])
            assert anne is not None
            await store.save_member(anne.model_copy(update={"non_urgent": False}), previous=anne)
        finally:
            await redis.aclose()

    asyncio.run(decline())
    advice = api.ok("alert", "preview", *ADVICE, **scene.token("coordinator")).output
    assert "Members reached: 2 (unreachable 0, opted out 0, declined non-urgent messages 1)" in advice
    urgent = api.ok("alert", "preview", *URGENT, **scene.token("police")).output
    assert "Members reached: 3 (unreachable 0, opted out 0)" in urgent


def test_a_refused_confirmation_sends_nothing(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """Without --yes the command asks: "n" for non-urgent, anything but the word URGENT for urgent, or no answer
    at all, and nothing is sent (exit status 1)."""
    for args, answer in [(ADVICE, "n\n"), (ADVICE, ""), (URGENT, "yes\n"), (URGENT, "")]:
        result = api("alert", "send", *args, input=answer, **scene.token("police"))
        assert result.exit_code == 1, result.output
        assert "Members reached: 3" in result.output  # the preview came first
        assert "Error: not sent: not confirmed (--yes sends without asking)" in result.output
    assert alert_ids(runtime) == []


def test_an_urgent_alert_typed_urgent_is_sent_and_watched_to_completion(
    api: PlpCommand, scene: Scene, workers: Workers
) -> None:
    """Typing URGENT sends the alert; ``--watch`` follows it until it is completed by the real workers and prints
    the figures per channel; exit status 0."""
    workers.start("urgent")
    result = api("alert", "send", *URGENT, "--watch", input="URGENT\n", **scene.token("police"))
    assert result.exit_code == 0, result.output
    alert_id = accepted_id(result.output)
    assert re.search(rf"^alert {alert_id} completed [\d.]+ s after it was posted: 6 deliveries$", result.output, re.M)
    rows = channel_rows(result.output)
    assert {channel: (row[0], row[1], row[3]) for channel, row in rows.items()} == {  # no credentials: the outbox
        "email": ("2", "0", "2"),
        "sms": ("2", "0", "2"),
        "voice": ("2", "0", "2"),
        "all": ("6", "0", "6"),
    }
    assert "acknowledged 0 of 6 deliveries (0%)" in result.output
    assert "cost: 0.40 EUR (2 SMS segments, 2 call minutes)" in result.output


def test_watch_draws_a_progress_bar_per_channel_on_a_terminal(
    api: PlpCommand, scene: Scene, workers: Workers, runtime: Runtime
) -> None:
    """On a terminal, ``alert watch`` draws a bar per channel with its count done out of planned, and the share
    acknowledged, of deliveries and of members, and the tally of answers; a member's answer shows there once it is
    recorded, and, as it consents to be contacted, their name and phone."""
    workers.start("urgent")
    alert_id = accepted_id(api.ok("alert", "send", *URGENT, "--yes", "--watch", **scene.token("police")).stdout)
    asyncio.run(_reply(runtime, scene.members["Anne Dubois"], "3"))  # a burglary's third answer: camera images
    result = api.ok("alert", "watch", alert_id, **scene.token("police"), FORCE_COLOR="1", COLUMNS="120")
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.output)
    for channel, done in (("email", "2/2"), ("sms", "2/2"), ("voice", "2/2")):
        assert re.search(rf"^{channel} +━+ {done} +outbox {done[0]}", plain, re.MULTILINE), plain
    assert "acknowledged 1 of 6 deliveries (17%)" in plain
    assert "members: 3, reached 0 (0%), acknowledged 1 (33%)" in plain  # the outbox reached nobody
    assert "answers: saw 0 · nothing 0 · camera 1" in plain
    assert re.search(r"^consents to be contacted \(camera\): Anne Dubois \+32", plain, re.MULTILINE), plain


async def _reply(runtime: Runtime, member_id: str, text: str) -> None:
    """The member answers the last SMS they got, as the Twilio webhook records it."""
    redis = runtime.async_redis()
    try:
        store = Store(redis, runtime.keys)
        member = await store.get_member(member_id)
        assert member is not None
        await Receipts(store).reply(member, ChannelName.SMS, text)
    finally:
        await redis.aclose()


def test_the_same_idempotency_key_sends_once(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """Sending twice with one ``--idempotency-key`` (a retry) gives the same alert, stored once."""
    first = api.ok("alert", "send", *ADVICE, "--yes", "--idempotency-key", "k-1", **scene.token("coordinator"))
    again = api.ok("alert", "send", *ADVICE, "--yes", "--idempotency-key", "k-1", **scene.token("coordinator"))
    assert accepted_id(first.output) == accepted_id(again.output)
    assert alert_ids(runtime) == [accepted_id(first.output)]
    other = api("alert", "send", *URGENT, "--yes", "--idempotency-key", "k-1", **scene.token("coordinator"))
    assert other.exit_code == 1  # coordinators send non-urgent only: refused before the key is looked at
    assert "not allowed" in other.output


def test_a_refused_alert_names_the_option_at_fault(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """An unknown PLP is reported by its option; a PLP outside the officer's zone is not allowed; a missing
    urgency or text is a usage error; nothing is sent."""
    unknown = api("alert", "send", "--plp", "parc", "--plp", "nosuch", *URGENT[2:], "--yes", **scene.token("police"))
    assert unknown.exit_code == 1
    assert unknown.output.strip().splitlines() == [
        "Error: some target PLPs do not exist:",
        "  plp_ids[1] (--plp): unknown PLP 'nosuch'",
    ]
    elsewhere = api("alert", "send", *URGENT, "--yes", **scene.token("police_elsewhere"))
    assert elsewhere.exit_code == 1 and elsewhere.output.startswith("Error: not allowed: ")
    too_long = api("alert", "preview", *URGENT, "--text", "de=" + "x" * 1601, **scene.token("police"))
    assert too_long.exit_code == 1
    assert re.search(r"^  texts\.de \(--text\): .*1600", too_long.output, re.MULTILINE), too_long.output
    for args, says in [
        (("--plp", "parc", "--category", "burglary", "--text", "fr=x"), "--urgent or --non-urgent"),
        (("--plp", "parc", "--urgent", "--category", "burglary"), "--text fr="),
        ((*URGENT, "--text", "fr-BE=x"), "LANG one of fr, nl, de, en"),
    ]:
        result = api("alert", "send", *args, "--yes", **scene.token("police"))
        assert result.exit_code == 2 and says in result.output, result.output
    assert alert_ids(runtime) == []


def test_texts_come_from_files(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """``--text-file fr=PATH`` reads one language's text; ``--text-file PATH`` a YAML mapping of them."""
    folder = tmp_path
    (folder / "fr.txt").write_text("Cambriolage rue du Parc\n")
    (folder / "texts.yaml").write_text("nl: Inbraak in de Parkstraat\nde: Einbruch in der Parkstrasse\n")
    result = api.ok(
        "alert", "preview", "--plp", "parc", "--urgent", "--category", "burglary",
        "--text-file", f"fr={folder / 'fr.txt'}", "--text-file", str(folder / "texts.yaml"), "--json",
        **scene.token("police"),
    )  # fmt: skip
    texts = {sms["language"]: sms["text"].splitlines()[0] for sms in json.loads(result.stdout)["sms"]}
    assert (texts["fr"], texts["nl"], texts["de"]) == (
        "Cambriolage rue du Parc",
        "Inbraak in de Parkstraat",
        "Einbruch in der Parkstrasse",
    )


def test_watching_a_cancelled_alert_ends_with_status_3(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """An alert cancelled before any worker took it ends ``cancelled``: watch prints it and exits with 3."""
    alert_id = accepted_id(api.ok("alert", "send", *URGENT, "--yes", **scene.token("police")).stdout)
    assert api("alert", "cancel", alert_id, input="n\n", **scene.token("police")).exit_code == 1
    assert f"alert {alert_id} cancelled" in api.ok("alert", "cancel", alert_id, "--yes", **scene.token("police")).output
    result = api("alert", "watch", alert_id, **scene.token("police"))
    assert result.exit_code == 3, result.output
    assert f"alert {alert_id} cancelled" in result.output
    again = api("alert", "cancel", alert_id, "--yes", **scene.token("police"))
    assert again.output.strip() == "Error: the alert is already cancelled"


def test_watch_gives_up_after_its_timeout_with_the_way_to_go_on(api: PlpCommand, scene: Scene) -> None:
    """With no worker running the alert stays accepted; ``--timeout`` ends the watch with a sentence, status 1."""
    alert_id = accepted_id(api.ok("alert", "send", *URGENT, "--yes", **scene.token("police")).stdout)
    result = api("alert", "watch", alert_id, "--timeout", "1", "--interval", "0.2", **scene.token("police"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: the alert is still accepted after 1 s; go on watching with `plp alert watch {alert_id}`"
    )
    unknown = api("alert", "watch", "nosuchalert", **scene.token("police"))
    assert unknown.exit_code == 1 and unknown.output.startswith("Error: not found: ")


def test_the_list_shows_the_alerts_of_your_part(api: PlpCommand, scene: Scene) -> None:
    """``alert list`` shows the caller's alerts, newest first, with status and counts."""
    first = accepted_id(api.ok("alert", "send", *URGENT, "--yes", **scene.token("police")).stdout)
    second = accepted_id(api.ok("alert", "send", *ADVICE, "--yes", **scene.token("coordinator")).output)
    lines = api.ok("alert", "list", **scene.token("police")).output.strip().splitlines()
    assert lines[0].split()[:4] == ["ID", "CREATED", "(UTC)", "URGENCY"]
    assert [line.split()[0] for line in lines[1:]] == [second, first]
    assert lines[2].split()[3:6] == ["urgent", "burglary", "parc"]
    assert api.ok("alert", "list", **scene.token("police_elsewhere")).output.strip().count("\n") == 0


class DroppingProxy:
    """A TCP proxy to the API that forwards the first ``POST /v1/alerts`` and then drops the client's connection
    as the answer comes back, like a network cut after the request went out. It runs in a thread of its own,
    since the command under test runs its own event loop."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.port = free_port()
        self.dropped = 0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        assert self.ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    async def _serve(self) -> None:
        self.loop, self.stop, self.handlers = asyncio.get_running_loop(), asyncio.Event(), set[asyncio.Task[None]]()
        server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.ready.set()
        await self.stop.wait()
        server.close()
        for handler in self.handlers:
            handler.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            first = await reader.read(65536)
            drop = first.startswith(b"POST /v1/alerts ") and self.dropped == 0
            self.dropped += drop
            up_writer.write(first)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, cut=drop))
        finally:
            for stream in (writer, up_writer):
                stream.close()
            self.handlers.discard(task)

    async def _pipe(self, source: asyncio.StreamReader, target: asyncio.StreamWriter, *, cut: bool = False) -> None:
        while data := await source.read(65536):
            if cut:  # the answer has come back: the client never sees it
                target.transport.abort()
                return
            target.write(data)
            await target.drain()
        target.close()


def test_a_send_whose_connection_drops_is_retried_with_its_key_and_stored_once(
    api: PlpCommand, scene: Scene, runtime: Runtime, web: str
) -> None:
    """The connection drops after the alert was accepted: the command posts it again with the same
    Idempotency-Key, is answered with the same alert, and the alert exists once."""
    dropping = DroppingProxy(web)
    with dropping as proxy:
        result = api.ok("alert", "send", *URGENT, "--yes", PLP_API_URL=proxy, **scene.token("police"))
    assert dropping.dropped == 1
    assert accepted_id(result.output) == alert_ids(runtime)[0]
    assert len(alert_ids(runtime)) == 1


def test_the_preview_of_an_alert_to_an_area_counts_members_without_a_place_apart(
    api: PlpCommand, scene: Scene, runtime: Runtime
) -> None:
    """``--circle`` targets the members around a point; those with no known place are counted apart (reached, as
    the default charter says); two kinds of area at once are refused."""
    out = api.ok("alert", "preview", *URGENT, "--circle", "50.8503,4.3517,500", **scene.token("police")).output
    assert "Members reached: 3 (unreachable 0, opted out 0)" in out
    assert "Per PLP: parc 3" in out
    assert "Without a known place: 3 reached, 0 left out (their charter)" in out
    refused = api("alert", "preview", *URGENT, "--circle", "50.85,4.35", **scene.token("police"))
    assert refused.exit_code == 2
    assert "LAT,LON,METRES" in refused.output
    both = api(
        "alert", "preview", *URGENT, "--circle", "50.85,4.35,9", "--street", "Rue Neuve", **scene.token("police")
    )
    assert both.exit_code == 2
    assert "one of --sector, --circle and --street" in both.output


def test_a_circle_around_an_address_is_sent_as_the_address_and_the_apis_answer_names_it(
    api: PlpCommand, scene: Scene, runtime: Runtime
) -> None:
    """``--circle "500 m around STREET NUMBER, POSTCODE COMMUNE"`` asks for the circle around that address; here no
    geocoder is configured, and the CLI shows the API's answer naming the address field and what to do."""
    out = api(
        "alert", "preview", *URGENT, "--circle", "500 m around Rue du Parc 12, 1180 Uccle", **scene.token("police")
    )
    assert out.exit_code == 1, out.output
    assert "area.circle.address: no geocoder is configured (PLP_GEOCODER_URL): give the center" in out.output
    bad = api("alert", "preview", *URGENT, "--circle", "500 m near Rue du Parc", **scene.token("police"))
    assert bad.exit_code == 2 and "METRES m around STREET NUMBER, POSTCODE COMMUNE" in bad.output


def test_a_follow_up_goes_once_to_the_alert_by_its_police(api: PlpCommand, scene: Scene, runtime: Runtime) -> None:
    """``alert follow-up --all-clear`` sends the alert's all-clear after a confirmation; the kind is required; a
    coordinator is refused; a follow-up of the follow-up is refused, saying which alert to follow up."""
    alert_id = accepted_id(api.ok("alert", "send", *URGENT, "--yes", **scene.token("police")).stdout)
    clear = ("alert", "follow-up", alert_id, "--text", "fr=Le suspect a été arrêté, merci.")
    assert api(*clear, **scene.token("police")).exit_code == 2  # neither --update nor --all-clear
    refused = api(*clear, "--all-clear", input="n\n", **scene.token("police"))
    assert refused.exit_code == 1 and "not sent: not confirmed" in refused.output
    coordinator = api(*clear, "--all-clear", "--yes", **scene.token("coordinator"))
    assert coordinator.exit_code == 1 and "only the police" in coordinator.output
    sent = api.ok(*clear, "--all-clear", input="y\n", **scene.token("police")).output
    found = re.search(rf"^follow-up (\w+) accepted: all_clear of alert {alert_id}$", sent, re.MULTILINE)
    assert found, sent
    assert runtime.sync_redis.hget(runtime.keys.alert_state(alert_id), "all_clear") == found.group(1)
    again = api("alert", "follow-up", found.group(1), "--update", "--text", "fr=x", "--yes", **scene.token("police"))
    assert again.exit_code == 1 and f"itself a follow-up of alert {alert_id}" in again.output
