"""The service on seven hosts: alerts through both web hosts, links across hosts, a worker host lost.

Promises under test: it runs on any number of web and worker processes on any number of hosts
sharing one Redis, and survives the loss of a host; a 202 means it will be sent; once, not
twice (every duplicate a provider saw is counted); everything from outside is checked (a
member's link is verified wherever it lands, a forged one refused).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from rq import Worker
from rq.exceptions import NoSuchJobError

from dispatcher.core.models import AlertStatus
from tests.hosts.client import GONE_OUT, Client, duplicates
from tests.hosts.cluster import LINKS_TO, WEB_HOSTS, WORKER_HOSTS
from tests.support import until

pytestmark = pytest.mark.slow

MEMBERS = 100  # per alert of the first test: 200 SMS and 200 e-mails over two alerts
LINK_MEMBERS = 10
KILL_MEMBERS = 150  # 300 deliveries, of which the killed host has some in flight


async def test_each_process_runs_in_its_hosts_namespace_and_reaches_redis_from_its_hosts_address(
    client: Client,
) -> None:
    """Every process of the service runs in the network namespace of its host, and Redis sees the web, worker and
    clock hosts (and the test's client) connect each from its own address."""
    cluster = client.cluster
    if cluster.mode != "namespaces":
        pytest.skip("on loopback the hosts share one network stack: connections to Redis all come from 127.0.0.1")
    for web in WEB_HOSTS:
        await client.call("GET", f"{cluster.web[web]}/v1/ready", expect=200)  # it answers once it reached Redis
    for host in cluster.hosts.values():
        for pid in host.pids():
            found = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True, check=True)
            assert found.stdout.strip() == host.namespace, (host, pid)
    clients = {c["addr"].rpartition(":")[0] for c in cluster.runtime.sync_redis.client_list()}
    expected = {cluster.hosts[name].address for name in (*WEB_HOSTS, *WORKER_HOSTS, "clock")}
    assert expected | {cluster.network.client_address} == clients


async def test_alerts_posted_to_both_web_hosts_complete_and_the_status_callbacks_come_back_to_both(
    client: Client,
) -> None:
    """An alert posted to each web host reaches its 100 members by SMS and e-mail, sent from the worker hosts;
    the status callbacks the vendors' host posts reach the web host that the sending worker host names (each
    worker host names its own: both, when both sent, as they mostly do), and every SMS ends delivered."""
    plp = await client.plp("web-1", "PLP Parc", "sms", "email")
    await client.members("web-2", plp, MEMBERS, start=0)
    alerts = [
        await client.alert("web-1", [plp], "Cambriolage rue du Parc, voiture grise."),
        await client.alert("web-2", [plp], "Vol à la tire place Flagey, soyez attentifs."),
    ]
    for alert_id in alerts:
        assert await client.finished(alert_id) is AlertStatus.COMPLETED
    await client.callbacks_done()

    sent = await client.sent(alerts)
    for alert_id, web in zip(alerts, reversed(WEB_HOSTS), strict=True):  # read on the web host it was not posted to
        deliveries = await client.deliveries(web, alert_id)
        statuses = Counter((ref.partition(":")[0], d["status"]) for ref, d in deliveries.items())
        assert statuses == {("sms", "delivered"): MEMBERS, ("email", "sent"): MEMBERS}
    assert not duplicates(sent)
    callbacks = [callback for s in sent for callback in s.callbacks]
    assert len(callbacks) == 2 * 2 * MEMBERS  # "sent", then "delivered", of each SMS
    assert all(status is not None and status < 300 for _, status in callbacks), Counter(s for _, s in callbacks)
    webs = {urlsplit(client.cluster.web[web]).netloc for web in WEB_HOSTS}
    named = {urlsplit(s.status_callback).netloc for s in sent if s.channel == "sms"}  # by the workers that sent
    called = Counter(urlsplit(url).netloc for url, _ in callbacks)
    assert all(urlsplit(url).netloc == urlsplit(s.status_callback).netloc for s in sent for url, _ in s.callbacks)
    assert set(called) == named and named <= webs, (called, named)


async def test_a_link_signed_on_a_worker_host_shows_its_page_and_acknowledges_on_either_web_host(
    client: Client,
) -> None:
    """The acknowledgement link of an e-mail, signed on a worker host and naming its web host, opens its page on
    both web hosts; the page's POST acknowledges on the web host the link does not name; a forged link is refused."""
    plp = await client.plp("web-2", "PLP Flagey", "email")
    members = await client.members("web-2", plp, LINK_MEMBERS, start=10_000)
    alert_id = await client.alert("web-1", [plp], "Démarcheurs suspects rue Malibran.")
    assert await client.finished(alert_id) is AlertStatus.COMPLETED

    member = members[0]
    link = await client.link_in_mail(member["email"], "/v1/r/")
    named = next(web for web in WEB_HOSTS if link.startswith(client.cluster.web[web] + "/"))
    assert named in {LINKS_TO[host] for host in ("work-1", "work-2")}  # signed by a worker host, for its web host
    other = next(web for web in WEB_HOSTS if web != named)
    path = urlsplit(link).path
    for web in WEB_HOSTS:
        kind, page = await client.call("GET", client.cluster.web[web] + path, expect=200)
        assert kind == "text/html" and "Démarcheurs suspects" in page
    token = path.rpartition("/")[2]
    forged = path[: -len(token)] + token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for web in WEB_HOSTS:
        await client.call("GET", client.cluster.web[web] + forged, expect=410)

    await client.call("POST", client.cluster.web[other] + path, expect=200, data={"action": "ack"})
    delivery = (await client.deliveries(named, alert_id))[f"email:{member['id']}"]
    assert delivery["acknowledged_at"] is not None and delivery["acknowledged_via"] == "email"
    assert client.counts(alert_id).get("acknowledged") == 1


async def test_every_process_of_a_worker_host_killed_mid_alert_loses_nothing_and_counts_every_duplicate(
    client: Client, figures: dict[str, Any]
) -> None:
    """Both workers of a worker host SIGKILLed while they send an alert to 150 members by SMS and e-mail: the other
    worker host and the clock finish it, every delivery is sent, and every duplicate a provider saw is counted.
    The host killed is one whose workers run a send batch of the alert (the urgent workers take an urgent alert's
    jobs, the general ones only those left waiting: which host sends it is the queues' choice)."""
    cluster = client.cluster
    plp = await client.plp("web-1", "PLP Gare", "sms", "email")
    await client.members("web-1", plp, KILL_MEMBERS, start=20_000)
    before = (await client.taken())["taken"]
    threshold = before + KILL_MEMBERS // 2  # the alert well under way at the kill
    alert_id = await client.alert("web-2", [plp], "Incendie rue de la Gare: fermez vos fenêtres.")
    victim = WORKER_HOSTS[-1]  # restarted below whatever happens; the one sending, once found
    try:
        victim = await until(
            lambda: _sending(client, threshold), timeout=60, what="a worker host sending the alert", every=0.02
        )
        killed = cluster.kill_host(victim)
        at = time.monotonic()
        claimed = client.in_flight_claims(alert_id)  # sends the dead workers left uncertain
        out_at_kill = (await client.taken())["taken"] - before

        assert await client.finished(alert_id, timeout=90) is AlertStatus.COMPLETED
        done_after = time.monotonic() - at
        await client.callbacks_done()
        records = client.records(alert_id)
        sent = await client.sent([alert_id])
    finally:
        cluster.restart_host(victim)  # the host is back for the module's other tests

    per_delivery = Counter(s.ref for s in sent)
    counted = client.counts(alert_id).get("possible_duplicates", 0)
    observed = sum(duplicates(sent).values())
    retried = sum(1 for r in records.values() if r.get("last_error"))
    figures.update(
        mode=cluster.mode,
        processes_killed=len(killed),
        messages_out_at_kill=out_at_kill,
        in_flight_at_kill=claimed,
        duplicates_observed=observed,
        duplicates_counted=counted,
        completed_after_kill_s=round(done_after, 2),
    )
    assert len(killed) >= 2  # both workers, and whatever else ran on the host
    # A 202 means it will be sent: every delivery planned, each handed to its provider, none twice unseen.
    assert len(records) == 2 * KILL_MEMBERS
    assert {ref: r["status"] for ref, r in records.items() if r["status"] not in GONE_OUT} == {}
    assert [ref for ref in records if per_delivery[ref] == 0] == []
    # Once, not twice: each duplicate counted on its delivery; no more counted than sends were uncertain.
    for ref, times in per_delivery.items():
        assert times - 1 <= int(records[ref].get("possible_duplicates", 0)), f"{ref} reached the provider {times} times"
    assert observed <= counted <= claimed + retried


async def _sending(client: Client, taken: int) -> str | None:
    """The worker host one of whose workers runs a send batch, once the providers took ``taken`` messages and have
    requests open; None before."""
    out = await client.taken()
    if out["taken"] < taken or out["in_flight"] == 0:
        return None
    return next((host for host in WORKER_HOSTS if "send_batch" in _running_on(client, host)), None)


def _running_on(client: Client, host: str) -> set[str]:
    """The functions the workers of ``host`` are running now (RQ's registry of workers)."""
    pids, running = {p.pid for p in client.cluster.hosts[host].alive()}, set()
    for worker in Worker.all(connection=client.cluster.runtime.rq_connection):
        try:
            job = worker.get_current_job() if worker.pid in pids else None
        except NoSuchJobError:  # the job ended (and RQ deleted it) between the two reads
            continue
        if job is not None:
            running.add(job.func_name.rpartition(".")[2])
    return running
