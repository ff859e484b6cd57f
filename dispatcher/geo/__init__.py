"""Geometry and geocoding: sectors read from GeoJSON and checked with shapely (``shapes``), the area an
alert targets and who is inside it (``areas``), and the Nominatim geocoder, through geopy (``geocoder``).

Talks to no Redis and no queue: it computes, and the geocoder talks to its one provider. When to
locate whom, at what rate, and what becomes of the answer is ``dispatcher.people.locating``'s.

May import: ``config``, ``dispatcher.core``.
"""
