"""``plp sectors`` and the places in ``plp members list``, through the real API."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import PlpCommand, Scene

WEST = [[4.350, 50.845], [4.352, 50.845], [4.352, 50.848], [4.350, 50.848], [4.350, 50.845]]
CROSSED = [[4.35, 50.84], [4.36, 50.85], [4.36, 50.84], [4.35, 50.85], [4.35, 50.84]]


def collection(*features: tuple[str, list[list[float]]]) -> str:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": name},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
                for name, ring in features
            ],
        }
    )


def test_a_coordinator_imports_lists_and_deletes_sectors(api: PlpCommand, scene: Scene, tmp_path: Path) -> None:
    """A GeoJSON file imports its sectors; a crossed polygon refuses the file naming the feature; the police of
    the zone list them; a sector is deleted by its id."""
    bad = tmp_path / "bad.geojson"
    bad.write_text(collection(("West", WEST), ("Crossed", CROSSED)), encoding="utf-8")
    refused = api("sectors", "import", "parc", str(bad), **scene.token("coordinator"))
    assert refused.exit_code != 0
    assert "features[1].geometry.coordinates" in refused.output
    assert "self-intersection" in refused.output

    good = tmp_path / "sectors.geojson"
    good.write_text(collection(("West", WEST)), encoding="utf-8")
    out = api.ok("sectors", "import", "parc", str(good), **scene.token("coordinator")).output
    sector_id = re.search(r"^sector (\w+) 'West' imported$", out, re.MULTILINE)
    assert sector_id, out
    listed = api.ok("sectors", "list", "parc", **scene.token("police")).output
    assert re.search(rf"^{sector_id.group(1)}\s+West\s+Polygon\s+-$", listed, re.MULTILINE), listed

    assert "deleted" in api.ok("sectors", "delete", "parc", sector_id.group(1), **scene.token("coordinator")).output
    assert "0 sectors" in api.ok("sectors", "list", "parc", **scene.token("coordinator")).output


def test_the_member_list_shows_places_and_filters_the_members_not_located(api: PlpCommand, scene: Scene) -> None:
    """Without an address or a position, every member says so; --not-located lists them."""
    out = api.ok("members", "list", "parc", "--not-located", **scene.token("coordinator")).output
    assert "3 members" in out
    assert "no_address: no address or position is known" in out
    in_none = api.ok("members", "list", "parc", "--sector", "none", "--json", **scene.token("coordinator")).output
    assert len(json.loads(in_none)["items"]) == 3


def test_the_charter_says_whether_area_alerts_reach_members_without_a_place(api: PlpCommand, scene: Scene) -> None:
    """``charter set --unlocated left-out`` keeps area alerts from members whose place is unknown; the charter
    says so; the preview of a circle then leaves them out."""
    out = api.ok("charter", "set", "parc", "--unlocated", "left-out", **scene.token("coordinator")).output
    assert "alerts to part of the PLP leave out the members whose place is unknown" in out
    urgent = ("--plp", "parc", "--urgent", "--category", "burglary", "--text", "fr=Cambriolage")
    out = api.ok("alert", "preview", *urgent, "--circle", "50.85,4.35,500", **scene.token("police")).output
    assert "Members reached: 0" in out
    assert "Without a known place: 0 reached, 3 left out (their charter)" in out
