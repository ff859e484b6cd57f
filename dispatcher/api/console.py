"""The web console's files, served by the service itself at ``/console`` (police networks are often closed).

The console is plain ES modules, CSS and JSON catalogs in ``dispatcher/console/`` (package
data, no build step). It is not an API operation: its routes are public (the page asks for
a token and sends it with each API call; nothing is served here that needs one) and stay out
of the OpenAPI document. Every answer carries a strict Content-Security-Policy (scripts and
styles from this service only, no inline code; images from the map's tile server too, when one is
configured) and is revalidated by ETag; the vendored libraries (Chart.js, Leaflet), whose folder names
carry their versions, are cached for a year. ``config.json`` tells the console the map's tile server
(``PLP_MAP_TILE_URL``, none by default: maps on a plain background) and its attribution, and the name of
the organisation's identity provider on the "Sign in with" button (``PLP_OIDC_NAME``, when one is configured).
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent / "console"
PREFIX = "/console"

#: The routes of the console (canonical forms): public, and not part of the API's document.
ROUTES = frozenset({PREFIX, f"{PREFIX}/", f"{PREFIX}/{{path}}"})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


def security_headers(tiles: str | None = None) -> dict[str, str]:
    """The headers of every answer; with a tile server, its origin may serve the page's images."""
    if tiles is None:
        return SECURITY_HEADERS
    parts = urlsplit(tiles)
    origin = f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:", f"img-src 'self' data: {origin}"
    )
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy}


def _files(root: Path) -> dict[str, Path]:
    """Every file of the console by its path under ``/console/``: nothing else can be asked for."""
    served = {*_TYPES, ".md"}  # .md: the vendored library's licence
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and p.suffix in served}


def _cache_control(name: str) -> str:
    if name.startswith("vendor/"):
        return "public, max-age=31536000, immutable"
    return "no-cache"  # revalidated by ETag: a new release is seen at once


def install(
    app: web.Application,
    root: Path = ROOT,
    *,
    tiles: str | None = None,
    attribution: str = "",
    sign_in_with: str | None = None,
) -> None:
    """Add the console's routes to the app; ``tiles``: the maps' tile server (a URL template), if any;
    ``sign_in_with``: the name of the organisation's identity provider, when one is configured."""
    files, headers = _files(root), security_headers(tiles)
    config = json.dumps({"map": {"tiles": tiles, "attribution": attribution}, "sign_in_with": sign_in_with})

    async def page(request: web.Request) -> web.StreamResponse:
        return _file(files["index.html"], "index.html", headers)

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["path"]
        if name == "config.json":
            return web.Response(
                text=config, content_type="application/json", headers={**headers, "Cache-Control": "no-cache"}
            )
        if name not in files:
            raise web.HTTPNotFound(text=f"the console has no file {name!r}")
        return _file(files[name], name, headers)

    app.router.add_get(PREFIX, page, name="console")
    app.router.add_get(f"{PREFIX}/", page, name="console_index")
    app.router.add_get(f"{PREFIX}/{{path:.+}}", asset, name="console_asset")


def _file(path: Path, name: str, security: dict[str, str]) -> web.FileResponse:
    content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {
        **security,
        "Cache-Control": _cache_control(name),
        "Content-Type": f"{content_type}; charset=utf-8" if content_type.startswith("text/") else content_type,
    }
    return web.FileResponse(path, headers=headers)
