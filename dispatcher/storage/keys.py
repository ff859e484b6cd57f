"""Every Redis key the service writes, built in this one place.

All keys start with the configured prefix (``plp:`` by default). RQ's own keys
(``rq:*``) are RQ's business. Layout:

=====================================  ======  =================================================
key                                    type    holds
=====================================  ======  =================================================
``plps``                               zset    every PLP id (lexicographic)
``plp:<id>``                           string  the PLP and its charter, JSON
``zone:<zone>:plps``                   set     PLP ids of one police zone
``plp:<id>:members``                   zset    member ids of a PLP (lexicographic)
``plp:<id>:alerts``                    zset    alert ids targeting a PLP, by creation time
``member:<id>``                        string  a member, JSON (personal data: erased on leave)
``contact:<digest>``                   string  member id owning a phone, e-mail or Telegram chat (digest only)
``member:<id>:last:<channel>``         string  the last delivery sent to a member on SMS or Telegram
``tglink:<token>``                     string  member id a Telegram deep link (``/start <token>``) links
``optouts``                            set     ids of members who opted out
``actor:<id>``                         string  an API user, JSON
``actors``                             zset    every actor id
``actor:<id>:notifications``           zset    notification ids for an actor, by time
``notification:<id>``                  string  something the service tells actors (few acknowledgements), JSON
``token:<sha256>``                     hash    a bearer token (by its hash only): actor, id, issued, expires, revoked
``tokenid:<token id>``                 string  sha256 of the token with this public id (``tok_...``)
``actor:<id>:tokens``                  set     public ids of an actor's tokens
``tokens``                             zset    every token's public id, by time of issue
``authfail:<address>``                 string  failed authentications from an address (forgotten 10 min after the last)
``authlock:<address>``                 string  present while an address must wait after failed authentications (PX)
``audit``                              stream  the audit log: who did what, ids only (capped near 1,000,000 entries)
``alerts``                             zset    every alert id, by creation time
``alert:<id>``                         string  what was asked: texts, targets, author, JSON
``alert:<id>:state``                   hash    status, ``t_<status>``, urgency, expiry, work left, ``held_until``,
                                               ``purged_at``, ``first_send_at``
``alert:<id>:relays``                  hash    PLP id -> relay decision, JSON
``alert:<id>:counts``                  hash    ``s:<status>``, ``c:<channel>:<status>``, totals, ``feedback``,
                                               ``p:<plp>:sms_segments``, ``p:<plp>:voice_minutes`` (cost per PLP)
``alert:<id>:members``                 set     members already planned (one delivery set each)
``alert:<id>:plp:<plp>:members``       set     members planned through that PLP (urgent follow-ups count them)
``alert:<id>:acks``                    set     members who acknowledged any of their deliveries
``alert:<id>:fanouts``                 set     PLP ids whose fan-out is still to finish
``alert:<id>:unreachable``             set     members no target PLP's plan can reach
``alert:<id>:d``                       zset    ``<channel>:<member>`` refs of every delivery (lex)
``alert:<id>:d:<status>``              zset    the same refs, per current status
``delivery:<alert>:<chan>:<member>``   hash    status, ``t_<status>`` times, PLP, attempts, failures, phase, ids, error
``feedback:<id>``                      string  a member's reply, JSON
``alert:<id>:feedback``                zset    feedback ids on an alert, by time
``plp:<id>:feedback``                  zset    feedback ids from a PLP's members, by time
``member:<id>:feedback``               zset    feedback ids of one member, by time (erased with the member)
``member:<id>:tglinks``                set     Telegram link tokens issued to a member, not used yet
``member:<id>:left``                   set     PLPs a member left while staying in others (to find their deliveries)
``plp:<id>:feedback:counts``           hash    replies received per month ``YYYY-MM``: anonymous, kept
``plp:<id>:activity:<year>``           hash    ``<event>:<MM>`` -> count, in the PLP's time zone; events ``joined``,
                                               ``left``, ``opted_out``, ``replies``: anonymous, kept (annual evaluation)
``plp:<id>:alert-figures``             hash    alert id -> that alert's figures for the PLP (members planned, reached,
                                               acknowledged, first acknowledgement, deliveries per channel), JSON,
                                               written by the purge before the deliveries go: anonymous, kept
``purged_until``                       string  alerts created before this Unix time have had their deliveries purged
``idem:<actor>:<key>``                 string  Idempotency-Key -> body digest and alert id
``events``                             pubsub  alert status changes, JSON
``seen:<source>:<event>``              string  a webhook event already handled (expires after a week)
``limit:<name>``                       string  a limit's next free time (GCRA), see ``storage.limits``: providers',
                                               and the API's ``api-token:<token id>``, ``api-address:<address>``
``departed:<name>``                    hash    a provider limit's departures: next moment one may leave (``t``),
                                               departures in a row (``n``), see ``storage.limits``
``leases``                             zset    ``<alert>|<ref>`` of claimed deliveries and fan-outs, by lease end
``holds``                              zset    ``<alert>|<ref>`` of deliveries a running batch will send, by hold end
``handed``                             zset    ``<alert>|<ref>`` of sends handed to a provider, unanswered, by call end
``handed:landed``                      pubsub  ``<alert>|<ref>`` of each send leaving ``handed`` (named by the scripts)
``dispatches``                         zset    ids of send jobs waiting in a queue, by when the clock looks again
``dispatch:<job id>``                  hash    what a waiting send job carries: alert, PLP, lane, refs (JSON), taken
``timers``                             zset    jobs to run at a time (retries aside), see ``pipeline.jobs``
``reply-out:<id>``                     hash    an answer to a member waiting to go: channel, address, text, language,
                                               lease, attempts (expires after an hour), see ``pipeline.replies``
``clock``                              string  the clock's last sweep, Unix time (its heartbeat)
``beats:<role>``                       zset    names of the processes of a role (``urgent``, ``general``, ``clock``),
                                               by the time of their last heartbeat, see ``operations.heartbeats``
``beat:<role>:<name>``                 string  that process's pid, host and start, JSON (expires a day after its last
                                               beat)
``metrics``                            hash    counters and histograms for ``/metrics``, see ``storage.scripts``
``replicated``                         string  a marker written before a WAIT for replicas (``storage.replication``)
``data-version``                       hash    the format of everything above: ``version``, the release that stamped it
                                               (``by``), when (``at``); see ``storage.migrations``
``data-version:lock``                  string  held by the process migrating the data (a ``redis-py`` lock)
=====================================  ======  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builders under one prefix."""

    prefix: str

    def plps(self) -> str:
        return f"{self.prefix}plps"

    def plp(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}"

    def zone_plps(self, zone: str) -> str:
        return f"{self.prefix}zone:{zone}:plps"

    def plp_members(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}:members"

    def plp_alerts(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}:alerts"

    def member(self, member_id: str) -> str:
        return f"{self.prefix}member:{member_id}"

    def member_last(self, member_id: str, channel: str) -> str:
        return f"{self.prefix}member:{member_id}:last:{channel}"

    def telegram_link(self, token: str) -> str:
        return f"{self.prefix}tglink:{token}"

    def contact(self, digest: str) -> str:
        return f"{self.prefix}contact:{digest}"

    def optouts(self) -> str:
        return f"{self.prefix}optouts"

    def actor(self, actor_id: str) -> str:
        return f"{self.prefix}actor:{actor_id}"

    def actors(self) -> str:
        return f"{self.prefix}actors"

    def actor_notifications(self, actor_id: str) -> str:
        return f"{self.prefix}actor:{actor_id}:notifications"

    def notification(self, notification_id: str) -> str:
        return f"{self.prefix}notification:{notification_id}"

    def token(self, token_hash: str) -> str:
        return f"{self.prefix}token:{token_hash}"

    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    def alert(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}"

    def alert_state(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:state"

    def alert_relays(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:relays"

    def alert_counts(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:counts"

    def alert_members(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:members"

    def alert_plp_members(self, alert_id: str, plp_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:plp:{plp_id}:members"

    def alert_acks(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:acks"

    def alert_unreachable(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:unreachable"

    def alert_fanouts(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:fanouts"

    def alert_deliveries(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:d"

    def alert_deliveries_in(self, alert_id: str, status: str) -> str:
        return f"{self.alert_deliveries(alert_id)}:{status}"

    def delivery(self, alert_id: str, ref: str) -> str:
        """Key of the delivery ``ref`` (``<channel>:<member>``) of an alert."""
        return f"{self.prefix}delivery:{alert_id}:{ref}"

    def delivery_move(self, alert_id: str, ref: str) -> list[str]:
        """The keys the claim and record scripts need to move one delivery (see ``dispatcher.storage.scripts``)."""
        return [
            self.delivery(alert_id, ref),
            self.alert_state(alert_id),
            self.alert_counts(alert_id),
            self.alert_deliveries_in(alert_id, ""),
            self.events(),
            self.leases(),
            self.holds(),
            self.metrics(),
            self.handed(),
        ]

    def feedback(self, feedback_id: str) -> str:
        return f"{self.prefix}feedback:{feedback_id}"

    def alert_feedback(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:feedback"

    def plp_feedback(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}:feedback"

    def idempotency(self, actor_id: str, key: str) -> str:
        return f"{self.prefix}idem:{actor_id}:{key}"

    def events(self) -> str:
        return f"{self.prefix}events"

    def seen(self, source: str, event_id: str) -> str:
        """Marks a provider's event (webhook) as handled, so that a replay is recorded once."""
        return f"{self.prefix}seen:{source}:{event_id}"

    def limit(self, name: str) -> str:
        return f"{self.prefix}limit:{name}"

    def departures(self, name: str) -> str:
        """When sends last left under a limit, and how many in a row (``dispatcher.storage.limits.DEPART``)."""
        return f"{self.prefix}departed:{name}"

    def leases(self) -> str:
        return f"{self.prefix}leases"

    def holds(self) -> str:
        return f"{self.prefix}holds"

    def handed(self) -> str:
        return f"{self.prefix}handed"

    def handed_landed(self) -> str:
        """The channel the scripts publish to as a send leaves ``handed`` (they append ``:landed``)."""
        return f"{self.handed()}:landed"

    def dispatches(self) -> str:
        return f"{self.prefix}dispatches"

    def dispatch(self, job_id: str) -> str:
        return f"{self.prefix}dispatch:{job_id}"

    def timers(self) -> str:
        return f"{self.prefix}timers"

    def reply_out(self, reply_id: str) -> str:
        """An answer to a member waiting to be sent (``dispatcher.pipeline.replies``)."""
        return f"{self.prefix}reply-out:{reply_id}"

    def clock_heartbeat(self) -> str:
        return f"{self.prefix}clock"

    def beats(self, role: str) -> str:
        """The processes of a role (``urgent``, ``general``, ``clock``) by the time of their last heartbeat."""
        return f"{self.prefix}beats:{role}"

    def beat(self, role: str, name: str) -> str:
        """Who one process is: pid, host, start (JSON)."""
        return f"{self.prefix}beat:{role}:{name}"

    def metrics(self) -> str:
        return f"{self.prefix}metrics"

    def replicated(self) -> str:
        """A counter written just before waiting for replicas: a replica that has it has all written before."""
        return f"{self.prefix}replicated"

    def member_feedback(self, member_id: str) -> str:
        return f"{self.prefix}member:{member_id}:feedback"

    def member_telegram_links(self, member_id: str) -> str:
        return f"{self.prefix}member:{member_id}:tglinks"

    def member_left(self, member_id: str) -> str:
        return f"{self.prefix}member:{member_id}:left"

    def plp_feedback_counts(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}:feedback:counts"

    def plp_activity(self, plp_id: str, year: int) -> str:
        return f"{self.prefix}plp:{plp_id}:activity:{year}"

    def plp_alert_figures(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}:alert-figures"

    def purged_until(self) -> str:
        return f"{self.prefix}purged_until"

    def token_id(self, token_id: str) -> str:
        return f"{self.prefix}tokenid:{token_id}"

    def actor_tokens(self, actor_id: str) -> str:
        return f"{self.prefix}actor:{actor_id}:tokens"

    def tokens(self) -> str:
        return f"{self.prefix}tokens"

    def auth_failures(self, address: str) -> str:
        return f"{self.prefix}authfail:{address}"

    def auth_lock(self, address: str) -> str:
        return f"{self.prefix}authlock:{address}"

    def audit(self) -> str:
        return f"{self.prefix}audit"

    def data_version(self) -> str:
        return f"{self.prefix}data-version"

    def data_version_lock(self) -> str:
        return f"{self.data_version()}:lock"
