"""Members, coordinators and their data: memberships across PLPs, actors and tokens, spreadsheet
imports, a member's export, the retention purge and the demo data of ``plp dev``.

May import: ``config``, ``dispatcher.core``, ``dispatcher.storage``, ``dispatcher.access``,
``dispatcher.reports``, ``dispatcher.pipeline``.
"""
