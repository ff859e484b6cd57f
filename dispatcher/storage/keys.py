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
``actor:<id>:notifications:read``      set     those of them the actor marked read
``notification:<id>``                  string  something the service tells actors (few acknowledgements), JSON
``token:<sha256>``                     hash    a bearer token (by its hash only): actor, id, issued, expires, revoked
``tokenid:<token id>``                 string  sha256 of the token with this public id (``tok_...``)
``actor:<id>:tokens``                  set     public ids of an actor's tokens
``tokens``                             zset    every token's public id, by time of issue
``signin:<sha256>``                    string  actor id a console sign-in link (by its hash only) opens, once (EX)
``session:<sha256>``                   hash    a console session (by its id's hash only): actor, CSRF token, start (EX)
``actor:<id>:sessions``                set     hashes of an actor's console sessions (sign-out everywhere)
``authfail:<address>``                 string  failed authentications from an address (forgotten 10 min after the last)
``authlock:<address>``                 string  present while an address must wait after failed authentications (PX)
``audit``                              stream  the audit log: who did what, ids only (capped near 1,000,000 entries)
``alerts``                             zset    every alert id, by creation time
``alert:<id>``                         string  what was asked: texts, targets, author, JSON
``alert:<id>:state``                   hash    status, ``t_<status>``, urgency, expiry, work left, ``held_until``,
                                               ``purged_at``, ``first_send_at``, ``all_clear`` (its all-clear's id)
``alert:<id>:follow-ups``              zset    ids of the alert's follow-ups (updates, all-clear), by creation time
``alert:<id>:relays``                  hash    PLP id -> relay decision, JSON
``alert:<id>:counts``                  hash    ``s:<status>``, ``c:<channel>:<status>``, totals, ``feedback``,
                                               ``p:<plp>:sms_segments``, ``p:<plp>:voice_minutes`` (cost per PLP),
                                               ``sector:<plp>:<sector>`` (members planned per sector), ``unlocated``
``alert:<id>:members``                 set     members already planned (one delivery set each)
``alert:<id>:plp:<plp>:members``       set     members planned through that PLP (urgent follow-ups count them)
``alert:<id>:acks``                    set     members who acknowledged any of their deliveries
``alert:<id>:answers``                 hash    member -> ``<answer id>|<time>``: the answer that counts (the latest)
``alert:<id>:answer-log``              list    every answer given, JSON ``[member, answer, time, channel]``
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
``plp:<id>:join-page``                 string  the PLP's join page: on/off, privacy notice per language, JSON
``plp:<id>:joins``                      zset    ids of the PLP's join requests, by time
``join:<id>``                           string  a resident's join request, JSON (personal data; expires: see
                                               ``people.joining``)
``join:<id>:code:<kind>``               hash    the one-time code confirming its phone or e-mail (10 min)
``join-contact:<digest>:codes``         string  join codes sent to one phone or e-mail within the hour
``join-contact:<digest>:lock``          string  present while that phone or e-mail is locked after wrong codes
``member:<id>:left``                   set     PLPs a member left while staying in others (to find their deliveries)
``locate``                             zset    ids of members waiting for the geocoder, by when to try (erased with
                                               the member), see ``people.locating``
``plp:<id>:sectors``                   hash    sector id -> a sector of the PLP (name, GeoJSON geometry, streets), JSON
``place:<digest>``                     hash    an alert's address (its circle's center) as the geocoder found it: state,
                                               lat, lon, reason; the address while it waits (expires after 30 days)
``locate:places``                      zset    digests of alerts' addresses waiting for the geocoder, by when to try
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
                                               and the API's ``api-token:<token id>``, ``api-address:<address>``; join
                                               requests' ``join-address:<address>``
``limit-waiter:<name>``                hash    the urgent caller next in line for a provider limit's slot: ``id``,
                                               ``since`` (when it first asked), see ``storage.limits``
``departed:<name>``                    hash    a provider limit's departures: next moment one may leave (``t``),
                                               departures in a row (``n``), see ``storage.limits``
``leases``                             zset    ``<alert>|<ref>`` of claimed deliveries and fan-outs, by lease end
``holds``                              zset    ``<alert>|<ref>`` of deliveries a running batch will send, by hold end
``handed``                             zset    ``<alert>|<ref>`` of sends handed to a provider, unanswered, by call end
``handed:landed``                      pubsub  ``<alert>|<ref>`` of each send leaving ``handed`` (named by the scripts)
``dispatches``                         zset    ids of send jobs waiting in a queue, by when the clock looks again
``dispatch:<job id>``                  hash    what a waiting send job carries: alert, PLP, lane, refs (JSON), taken
``timers``                             zset    jobs to run at a time (retries aside), see ``pipeline.jobs``
``drill:<id>``                         string  a recurring drill's schedule, JSON (no member's data)
``plp:<id>:drills``                    set     ids of a PLP's drill schedules
``drills``                             zset    drill schedule ids, scored by their next occurrence
``drill:<id>:sent:<time>``             string  Idempotency-Key of one occurrence: sent once
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
from typing import Final

#: The field of ``alert:<id>:state`` that holds the id of the alert's all-clear, once it has one.
ALL_CLEAR_FIELD: Final = "all_clear"


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

    def actor_notifications_read(self, actor_id: str) -> str:
        return f"{self.prefix}actor:{actor_id}:notifications:read"

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

    def alert_follow_ups(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:follow-ups"

    def alert_acks(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:acks"

    def alert_answers(self, alert_id: str) -> str:
        """Each member's answer that counts on an alert: member -> ``<answer id>|<time>``."""
        return f"{self.prefix}alert:{alert_id}:answers"

    def alert_answer_log(self, alert_id: str) -> str:
        """Every answer given on an alert, changes included, in the order they came."""
        return f"{self.prefix}alert:{alert_id}:answer-log"

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

    def limit_waiter(self, name: str) -> str:
        """The urgent caller next in line for a provider limit's slot (``dispatcher.storage.limits.GCRA``)."""
        return f"{self.prefix}limit-waiter:{name}"

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

    def drill(self, drill_id: str) -> str:
        return f"{self.prefix}drill:{drill_id}"

    def plp_drills(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}:drills"

    def drills(self) -> str:
        return f"{self.prefix}drills"

    def drill_sent(self, drill_id: str, occurrence: int) -> str:
        """Sent once: the Idempotency-Key of one occurrence of a drill (Unix time of the occurrence)."""
        return f"{self.prefix}drill:{drill_id}:sent:{occurrence}"

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

    def member_contact_change(self, member_id: str) -> str:
        """A member's pending change of phone or e-mail, with its one-time code (``dispatcher.people.selfservice``)."""
        return f"{self.prefix}member:{member_id}:contact-change"

    def member_contact_codes(self, member_id: str) -> str:
        """How many codes were sent to the member for a contact change within the hour (the rate limit)."""
        return f"{self.prefix}member:{member_id}:contact-codes"

    def join_page(self, plp_id: str) -> str:
        """A PLP's join page: on or off, and its privacy notice per language (``dispatcher.people.joining``)."""
        return f"{self.prefix}plp:{plp_id}:join-page"

    def join_requests(self, plp_id: str) -> str:
        """Ids of a PLP's join requests, by time (a request whose record expired is dropped when read)."""
        return f"{self.prefix}plp:{plp_id}:joins"

    def join_request(self, request_id: str) -> str:
        """A resident's request to join a PLP, JSON (personal data: expires, see ``dispatcher.people.joining``)."""
        return f"{self.prefix}join:{request_id}"

    def join_code(self, request_id: str, kind: str) -> str:
        """The one-time code confirming a join request's phone or e-mail (``dispatcher.access.codes``)."""
        return f"{self.prefix}join:{request_id}:code:{kind}"

    def join_contact_codes(self, digest: str) -> str:
        """How many join codes went to one phone or e-mail (its digest) within the hour."""
        return f"{self.prefix}join-contact:{digest}:codes"

    def join_contact_lock(self, digest: str) -> str:
        """Set once a join code for this phone or e-mail (its digest) was wrong too many times."""
        return f"{self.prefix}join-contact:{digest}:lock"

    def member_contact_lock(self, member_id: str) -> str:
        """Set once a contact change got too many wrong codes: none can be started while it lives."""
        return f"{self.prefix}member:{member_id}:contact-lock"

    def locate(self) -> str:
        return f"{self.prefix}locate"

    def place(self, digest: str) -> str:
        return f"{self.prefix}place:{digest}"

    def locate_places(self) -> str:
        return f"{self.prefix}locate:places"

    def plp_sectors(self, plp_id: str) -> str:
        return f"{self.prefix}plp:{plp_id}:sectors"

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

    def signin(self, code_hash: str) -> str:
        return f"{self.prefix}signin:{code_hash}"

    def oidc_state(self, state_hash: str) -> str:
        return f"{self.prefix}oidc:{state_hash}"

    def session(self, session_hash: str) -> str:
        return f"{self.prefix}session:{session_hash}"

    def actor_sessions(self, actor_id: str) -> str:
        return f"{self.prefix}actor:{actor_id}:sessions"

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
