"""Everything that talks to Redis directly: the key layout (``keys``), the Lua scripts
(``scripts``), the ``Store`` that reads and writes each key family, the GCRA meters shared by
every process (``limits``), scrubbing a member's data (``erasure``), the connections a process
holds (``runtime``), the embedded Redis of ``plp dev`` (``redis_server``) and the data version
with its migrations (``migrations``).

May import: ``dispatcher.core``.
"""
