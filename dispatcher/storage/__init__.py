"""Everything that talks to Redis directly: the key layout (``keys``), the Lua scripts
(``scripts``), the ``Store`` that reads and writes each key family (asyncio) with the records it
returns (``records``) and its synchronous reads for the jobs and the clock (``reader``), the
anonymous counters written with each event for the annual evaluation (``counters``), the GCRA
meters shared by every process (``limits``), scrubbing a member's data (``erasure``), the
connections a process holds (``runtime``), the embedded Redis of ``plp dev`` (``redis_server``)
and the data version with its migrations (``migrations``).

May import: ``config``, ``dispatcher.core``.
"""
