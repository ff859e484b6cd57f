"""Members, coordinators and their data: memberships across PLPs, where members live and the
background geocoding that locates them (``locating``), actors and tokens, spreadsheet imports, a
member's export, a member's own choices and contact changes, residents' requests to join a PLP
(``joining``), the retention purge and the demo data of ``plp dev``.

May import: ``config``, ``dispatcher.core``, ``dispatcher.storage``, ``dispatcher.access``,
``dispatcher.reports``, ``dispatcher.pipeline``, ``dispatcher.geo``.
"""
