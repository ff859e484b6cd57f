"""The console's files: served by the service itself with a strict security policy, shipped in the wheel,
and worded in the four languages (every key in every catalog)."""

from __future__ import annotations

import glob
import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import Settings
from dispatcher.api import console
from dispatcher.api.app import create_app
from dispatcher.core.models import (
    AlertStatus,
    Category,
    ChannelName,
    DeliveryMode,
    DeliveryStatus,
    Language,
    RelayState,
    Role,
    Urgency,
)
from dispatcher.storage.runtime import Runtime

ROOT = console.ROOT
CATALOGS = {lang: json.loads((ROOT / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in Language}
SCRIPTS = sorted((ROOT / "js").rglob("*.js"))


async def test_the_console_page_is_served_without_a_token_with_a_strict_content_security_policy(
    client: TestClient,
) -> None:
    """No inline script or style may run, nothing comes from another origin, the page cannot be framed."""
    for path in ("/console", "/console/"):
        response = await client.get(path)
        assert response.status == 200
        assert response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-cache"


async def test_files_are_revalidated_by_etag_and_the_versioned_library_is_cached_for_a_year(client: TestClient) -> None:
    """A new release is seen at once (ETag, 304 when unchanged); the vendored chart library is immutable."""
    response = await client.get("/console/js/main.js")
    assert response.status == 200 and response.content_type == "text/javascript"
    again = await client.get("/console/js/main.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    library = await client.get("/console/vendor/chart.js-4.5.1/chart.umd.min.js")
    assert library.status == 200
    assert library.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    catalog = await client.get("/console/i18n/nl.json")
    assert catalog.content_type == "application/json" and (await catalog.json())["nav.compose"] == "Nieuwe melding"


@pytest.mark.parametrize(
    "path", ["/console/nothing.js", "/console/../config/settings.py", "/console/%2e%2e/api/app.py", "/console/js"]
)
async def test_only_the_console_files_can_be_asked_for(client: TestClient, path: str) -> None:
    """Anything else under /console is a 404, never a file of the service."""
    response = await client.get(path)
    assert response.status == 404


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_has_no_inline_code_and_every_file_it_names_exists() -> None:
    """Scripts and styles come from files (the policy would block inline ones), and those files ship."""
    parser = _Tags()
    parser.feed((ROOT / "index.html").read_text(encoding="utf-8"))
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    assert not [attrs for _, attrs in parser.tags if "style" in attrs or any(k.startswith("on") for k in attrs)]
    named = [attrs.get("src") or attrs.get("href") for tag, attrs in parser.tags if tag in ("script", "link")]
    for url in named:
        assert url is not None
        if url.startswith("/console/"):
            assert (ROOT / url.removeprefix("/console/")).is_file(), url
        else:
            assert url == "data:,", f"{url}: everything is served by the service (no CDN)"
    for script in SCRIPTS:
        code = script.read_text(encoding="utf-8")
        assert not re.search(
            r"innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function", code
        ), script
        assert "http://" not in code and "https://" not in code.replace("https://t.me", ""), f"{script}: no CDN"


def test_the_wheel_ships_every_console_file() -> None:
    """pyproject's package data covers every file of dispatcher/console."""
    config = tomllib.loads((ROOT.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["dispatcher"]
    package = ROOT.parent
    shipped = {Path(p) for pattern in patterns for p in glob.glob(pattern, root_dir=package, recursive=True)}
    files = {p.relative_to(package) for p in ROOT.rglob("*") if p.is_file()}
    assert files <= shipped, sorted(map(str, files - shipped))
    assert (ROOT / "vendor" / "chart.js-4.5.1" / "LICENSE.md").is_file(), "the vendored library keeps its licence"


def test_every_key_exists_in_all_four_catalogs_with_the_same_placeholders() -> None:
    """French, Dutch, German and English have the same keys, none empty, each with the same {placeholders}."""
    english = CATALOGS["en"]
    for lang, catalog in CATALOGS.items():
        assert set(catalog) == set(english), (lang, sorted(set(catalog) ^ set(english)))
        for key, text in catalog.items():
            assert text.strip(), (lang, key)
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", english[key])), (lang, key)


def test_every_key_the_code_uses_is_in_the_catalogs() -> None:
    """Keys written in the code, and the keys built from the service's names (statuses, categories...), exist."""
    used: set[str] = set()
    for script in SCRIPTS:
        code = script.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\(\"([a-z_.]+)\"", code))
        used |= {f"{key}.other" for key in re.findall(r"\btn\(\"([a-z_.]+)\"", code)}
    used |= set(re.findall(r'data-i18n="([a-z_.]+)"', (ROOT / "index.html").read_text(encoding="utf-8")))
    families = {
        "category": Category,
        "channel": ChannelName,
        "status": AlertStatus,
        "dstatus": DeliveryStatus,
        "urgency": Urgency,
        "role": Role,
        "relay_state": RelayState,
        "language": Language,
        "mode": DeliveryMode,
    }
    used |= {f"{prefix}.{value.value}" for prefix, names in families.items() for value in names}
    used |= {f"nav.{view}" for view in ("compose", "alerts", "relay", "feedback", "members", "evaluation")}
    used |= {f"follow.live_{state}" for state in ("live", "reconnecting", "finished")}
    used |= {f"follow.{kind}.other" for kind in ("not_reached", "not_acknowledged", "unreachable_members")}
    used |= {"relay.approved", "relay.declined"}
    used |= {f"compose.urgency_hint.{u.value}" for u in Urgency} | {"members.status_active", "members.status_opted_out"}
    used |= {f"follow.audience_{k}" for k in ("members", "reached", "acknowledged", "unreachable")}
    used |= {f"follow.chart_axis_x_{unit}" for unit in ("second", "minute")}
    for lang, catalog in CATALOGS.items():
        assert not used - set(catalog), (lang, sorted(used - set(catalog)))


async def test_the_maps_have_no_tile_server_by_default_and_the_configured_one_alone_may_serve_images(
    client: TestClient, settings: Settings
) -> None:
    """Without PLP_MAP_TILE_URL the console's config says no tiles and images come from the service only; with
    one, its origin alone is added to img-src; a template without {z}/{x}/{y} is refused at start-up."""
    plain = await client.get("/console/config.json")
    assert (await plain.json())["map"] == {"tiles": None, "attribution": ""}
    assert "img-src 'self' data:;" in plain.headers["Content-Security-Policy"]
    tiles = "https://tiles.example.be/osm/{z}/{x}/{y}.png"
    runtime = Runtime.from_settings(settings.model_copy(update={"map_tile_url": tiles, "map_attribution": "© OSM"}))
    try:
        async with TestClient(TestServer(create_app(runtime))) as other:
            config = await (await other.get("/console/config.json")).json()
            page = await other.get("/console")
    finally:
        runtime.close()
    assert config["map"] == {"tiles": tiles, "attribution": "© OSM"}
    assert "img-src 'self' data: https://tiles.example.be;" in page.headers["Content-Security-Policy"]
    with pytest.raises(ValueError, match="PLP_MAP_TILE_URL"):
        Settings(redis_url=None, map_tile_url="https://tiles.example.be/tile.png")


async def test_leaflet_is_vendored_with_its_licence_and_cached_for_a_year(client: TestClient) -> None:
    """The map library is served from the service (no CDN), versioned and immutable."""
    assert (ROOT / "vendor" / "leaflet-1.9.4" / "LICENSE.md").is_file()
    for name in ("leaflet.js", "leaflet.css"):
        response = await client.get(f"/console/vendor/leaflet-1.9.4/{name}")
        assert response.status == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
