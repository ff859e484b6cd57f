"""The commands that act for a person talk to the HTTP API, with a bearer token.

So roles, validation, audit, rate limits and idempotency are the API's, the same as for the
console and for scripts. The client is aiohttp's: it is already the service's own HTTP
library (a direct dependency, unlike ``requests``, which only comes with twilio), and the
live ``alert watch`` is a polling loop that suits an event loop.

Every way a call can fail is turned into a short sentence with the fix, in this module
only: the service cannot be reached, the token is refused, a field is not valid (named by
the option that set it), not allowed, not found, too many requests, unavailable for now (503,
which a call given patience waits out), a server error.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import click

from dispatcher.cli.common import cli_settings
from dispatcher.core.models import Role

T = TypeVar("T")

#: Seconds a single API call may take (an import of 10,000 rows takes a few).
REQUEST_TIMEOUT = 120.0
CONNECT_TIMEOUT = 5.0
#: Seconds a call given patience waits between two tries at most (Retry-After sets the least).
MAX_BACKOFF = 30.0
DEMO_TOKENS = "demo-tokens.env"
_TOKEN_LINE = re.compile(r"(?:export\s+)?PLP_(?:(?P<role>[A-Za-z]+)_)?TOKEN=(?P<q>['\"]?)(?P<token>[^'\"\s]+)(?P=q)")


class ApiError(click.ClickException):
    """A call to the API that failed, as a sentence saying what to do."""


@dataclass(frozen=True)
class Connection:
    """Where the API is and which token to show it, as given by the options (resolved when first used)."""

    api_url: str | None
    token: str | None
    token_file: Path | None
    as_role: str | None

    @functools.cached_property
    def base_url(self) -> str:
        url = self.api_url.rstrip("/") if self.api_url else cli_settings(logging=False).local_url
        if not re.match(r"^https?://[^/\s]+", url):
            raise click.BadParameter(f"{url!r} is not a URL like http://127.0.0.1:8080", param_hint="--api")
        host = urlsplit(url).hostname or ""
        if url.startswith("http://") and host not in ("127.0.0.1", "::1", "localhost"):
            click.echo(f"(warning: the token goes unencrypted to {url}; use the service's https:// address)", err=True)
        return url

    @functools.cached_property
    def bearer(self) -> str:
        """The token: --token, else the one of --token-file, else the demo token `plp dev` wrote."""
        if self.token:
            if self.as_role:
                raise click.UsageError("--as picks a token of a token file: leave it out with --token (PLP_TOKEN)")
            return self.token.strip()
        if self.token_file is not None:
            return _token_of_file(self.token_file, self.as_role, hint="--token-file")
        demo = cli_settings(logging=False).data_dir / DEMO_TOKENS
        if demo.is_file():
            token = _token_of_file(demo, self.as_role or Role.ADMIN.value, hint="the demo tokens")
            click.echo(f"(using the demo {self.as_role or Role.ADMIN.value} token of {demo})", err=True)
            return token
        raise click.UsageError(
            "no token: pass --token or set PLP_TOKEN (an admin issues one with `plp token issue`), "
            "or run `plp dev` here, whose demo tokens are used when no token is given"
        )


def _token_of_file(path: Path, role: str | None, *, hint: str) -> str:
    """The token in ``path``: the file is the token alone, or ``export PLP_<ROLE>_TOKEN=...`` lines."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path} ({hint}): {exc.strerror}") from None
    found: dict[str | None, str] = {}
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if match := _TOKEN_LINE.fullmatch(line):
            found[match["role"].lower() if match["role"] else None] = match["token"]
        elif "=" not in line and " " not in line:
            found[None] = line
    if not found:
        raise click.ClickException(f"{path} ({hint}) holds no token")
    key = role if role else (None if None in found else next(iter(found)) if len(found) == 1 else Role.ADMIN.value)
    if key not in found:
        roles = ", ".join(sorted(r for r in found if r)) or "one without a role"
        raise click.ClickException(f"{path} ({hint}) holds no {key} token (it has: {roles}); pick one with --as")
    return found[key]


def api_options(command: Callable[..., T]) -> Callable[..., T]:
    """Add --api, --token, --token-file and --as to a command, which receives them as ``connection``."""

    @click.option(
        "--api",
        "api_url",
        envvar="PLP_API_URL",
        show_envvar=True,
        metavar="URL",
        help="The service's base URL. Default: http://PLP_HOST:PLP_PORT, i.e. http://127.0.0.1:8080.",
    )
    @click.option(
        "--token",
        envvar="PLP_TOKEN",
        show_envvar=True,
        metavar="TOKEN",
        help="Bearer token (from `plp token issue`). Prefer the variable: options are visible to other local users.",
    )
    @click.option(
        "--token-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="PLP_TOKEN_FILE",
        show_envvar=True,
        help="Read the token from this file: the token alone, or PLP_<ROLE>_TOKEN=... lines. Without --token and "
        "--token-file, the demo tokens `plp dev` wrote to PLP_DATA_DIR/demo-tokens.env are used, if any.",
    )
    @click.option(
        "--as",
        "as_role",
        type=click.Choice([r.value for r in Role]),
        help="Which role's token of a token file to use (PLP_<ROLE>_TOKEN lines, as in the demo tokens); "
        "default admin.",
    )
    @functools.wraps(command)
    def with_connection(
        *args: Any, api_url: str | None, token: str | None, token_file: Path | None, as_role: str | None, **kwargs: Any
    ) -> T:
        return command(*args, connection=Connection(api_url, token, token_file, as_role), **kwargs)

    return with_connection


@dataclass(frozen=True)
class Answer:
    """A successful answer: its status, headers and body (decoded JSON, or text)."""

    status: int
    headers: Mapping[str, str]
    body: Any


class ApiClient:
    """Calls to the API on one connection pool; failures raise ``ApiError`` with a sentence."""

    def __init__(self, connection: Connection, session: aiohttp.ClientSession) -> None:
        self.connection, self.session = connection, session

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        text_body: str | bytes | None = None,
        content_type: str = "application/json",
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        allow: frozenset[int] = frozenset(),
        patience: float = 0.0,
    ) -> Answer:
        """Send one request; return the answer if it is a success (2xx) or its status is in ``allow``, else
        raise ``ApiError``.

        ``options`` names the command-line option behind a request field (``{"plp_ids": "--plp"}``),
        so that a refused field is reported by the option the user typed. With ``patience``, a 503
        (the service's Redis restarting or failing over) is tried again as it was sent (with the
        same Idempotency-Key, if it has one), after its Retry-After and a growing backoff, saying
        so on stderr, until ``patience`` seconds have passed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        for attempt in itertools.count(1):
            answer = await self._call(method, path, json_body, text_body, content_type, params, headers)
            left = deadline - loop.time()
            if answer.status != 503 or 503 in allow or left <= 0:
                break
            wait = min(_backoff(answer.headers, attempt), left)
            click.echo(_waiting(answer.body, wait, left, headers or {}), err=True)
            await asyncio.sleep(wait)
        if answer.status >= 400 and answer.status not in allow:
            url = self.connection.base_url + path
            refusal = _refusal(answer.status, answer.body, answer.headers, url, options or {})
            gave_up = answer.status == 503 and patience
            raise ApiError(refusal + (f"; still so after {patience:.0f} s of retries" if gave_up else ""))
        return answer

    async def _call(
        self,
        method: str,
        path: str,
        json_body: Any,
        text_body: str | bytes | None,
        content_type: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
    ) -> Answer:
        url = self.connection.base_url + path
        sent = dict(headers or {})
        data: str | bytes | None = None
        if json_body is not None:
            data = json.dumps(json_body)
        elif text_body is not None:
            data = text_body
        if data is not None:
            sent["Content-Type"] = content_type
        sent["Authorization"] = f"Bearer {self.connection.bearer}"
        async with self.session.request(method, url, data=data, params=params, headers=sent) as response:
            text = await response.text()
            return Answer(response.status, response.headers, _decode(text, response.content_type))

    async def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``path`` and return its decoded body."""
        return (await self.call("GET", path, **kwargs)).body


def _backoff(headers: Mapping[str, str], attempt: int) -> float:
    """Seconds before try ``attempt + 1``: twice longer each time (1, 2, 4... up to MAX_BACKOFF), never less
    than the answer's Retry-After (seconds, or an HTTP date)."""
    growing = min(MAX_BACKOFF, 2.0 ** (attempt - 1))
    raw = headers.get("Retry-After", "").strip()
    if raw.isdigit():
        return max(growing, float(raw))
    try:
        at = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return growing
    return max(growing, (at - datetime.now(UTC)).total_seconds()) if at.tzinfo else growing


def _waiting(body: Any, wait: float, left: float, headers: Mapping[str, str]) -> str:
    """What the user is told while a call waits for the service to be available again."""
    why = body.get("detail") if isinstance(body, dict) else None
    key = headers.get("Idempotency-Key")
    again = f" with the same Idempotency-Key {key}" if key else ""
    return (
        f"the service is unavailable for now ({why or '503'}): waiting {wait:.0f} s, then trying again{again} "
        f"(giving up in {left:.0f} s; Ctrl-C stops)"
    )


def _decode(text: str, content_type: str) -> Any:
    if content_type.endswith("json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def run_api(connection: Connection, work: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Run ``work`` with a client of the API in an event loop of its own; network failures become sentences."""

    async def run() -> T:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "plp-cli"}) as session:
            return await work(ApiClient(connection, session))

    base = connection.base_url  # a bad --api is a usage error before anything is sent
    try:
        return asyncio.run(run())
    except aiohttp.ClientConnectorError as exc:
        why = "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else exc.os_error.strerror
        raise ApiError(
            f"cannot reach the service at {base} ({why or exc.os_error}). "
            "Is the service running? Start it with `plp dev` (or `plp web`), or point --api (PLP_API_URL) at it."
        ) from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise ApiError(
            f"the service at {base} did not answer within {REQUEST_TIMEOUT:.0f} s; "
            "check that it is running and that Redis answers (`plp status`), then try again"
        ) from None
    except aiohttp.InvalidURL:
        raise click.BadParameter(f"{base!r} is not a URL like http://127.0.0.1:8080", param_hint="--api") from None
    except aiohttp.ClientError as exc:
        raise ApiError(f"the connection to {base} failed ({exc or type(exc).__name__}); try again") from None


def _refusal(status: int, body: Any, headers: Mapping[str, str], url: str, options: Mapping[str, str]) -> str:
    """What a refused call means, in a sentence or a few, with what to do."""
    if not isinstance(body, dict) or "status" not in body:
        return (
            f"unexpected answer {status} from {url}; is --api (PLP_API_URL) the address of plp-dispatch, "
            "and the service up to date?"
        )
    detail = str(body.get("detail") or body.get("title") or status)
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    if status == 401:
        reason = errors[0].get("reason", "unknown") if errors else "missing"
        return (
            f"the token was refused ({reason}): {detail}. Check --token (PLP_TOKEN) or --token-file, "
            "or ask an admin for a new one (`plp token issue`)"
        )
    if status == 403:
        return f"not allowed: {detail}. Use the token of someone whose role allows it"
    if status == 404:
        return f"not found: {detail}"
    if status == 429:
        wait = headers.get("Retry-After")
        return f"too many requests: {detail}" + (f"; try again in {wait} s" if wait else "; try again shortly")
    if status == 503:
        wait = headers.get("Retry-After")
        return f"the service is unavailable for now: {detail}" + (f" (retry in {wait} s)" if wait else "")
    if status >= 500:
        return f"the service failed ({status}): {detail}. Its log says more; try again"
    if not errors:
        return detail
    if len(errors) == 1 and str(errors[0].get("reason", "")) in detail:  # said once is enough
        return f"{_field_name(str(errors[0].get('field', '')), options)}: {errors[0].get('reason', '')}"
    generic = re.match(r"\d+ field\(s\) are not valid", detail)  # the fields are listed below
    lines = ["not valid:" if generic else f"{detail}:"]
    lines += [f"  {_field_name(str(e.get('field', '')), options)}: {e.get('reason', '')}" for e in errors]
    return "\n".join(lines)


def _field_name(field: str, options: Mapping[str, str]) -> str:
    """``body.plp_ids[1]`` → ``plp_ids[1] (--plp)``: the API's field, and the option that set it.

    The option is the one mapped to the longest leading part of the field (``urgent.channels``
    before ``urgent``).
    """
    name = re.sub(r"^(body|query|path)\.", "", field)
    parts = [key for key in options if name == key or name.startswith((f"{key}.", f"{key}["))]
    return f"{name} ({options[max(parts, key=len)]})" if parts else name
