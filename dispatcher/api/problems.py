"""Errors as RFC 9457 problem details (``application/problem+json``), naming the field at fault.

Redis out of reach (down, restarting, loading its data, failing over to a replica that is
still read-only, out of memory) is the one failure a client should simply retry: every route
then answers 503 with ``Retry-After``, never 500. A retried alert is not sent twice: its
Idempotency-Key is stored in the alert's own transaction (``dispatcher.pipeline.intake``); and a
provider's event is only marked as handled once it was, so that the provider's retry counts.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from redis import exceptions as redis_errors

from dispatcher.access.policy import Denied
from dispatcher.core.validation import field_errors
from dispatcher.exchange import CapRefused
from dispatcher.storage.store import Conflict

log = structlog.get_logger(__name__)

#: The media type of every error answer (RFC 9457).
PROBLEM = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where: body.texts.fr, query.limit, path.plp_id, rows[3].phone...")
    reason: str


class ProblemModel(BaseModel):
    """A problem detail: what went wrong, and where."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class Problem(Exception):
    """Raised anywhere in a request to answer with a problem detail."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = ProblemModel(
            title=self.title, status=self.status, detail=self.detail, errors=[FieldError(**e) for e in self.errors]
        )
        return web.Response(
            status=self.status,
            text=body.model_dump_json(),
            content_type=PROBLEM,
            headers=self.headers,
        )


#: Seconds a client is told to wait (``Retry-After``) before it retries a request Redis could not serve.
UNAVAILABLE_RETRY_AFTER = 2

#: What the OpenAPI document says of the 503 every operation that needs Redis may answer.
UNAVAILABLE_DESCRIPTION = (
    "Redis cannot be reached right now (restarting, failing over): retry after Retry-After seconds; "
    "an alert retried with the same Idempotency-Key is sent once"
)

#: Redis errors that say "not now" rather than "never": the connection (refused, lost, timed out; the
#: server still loading its data), a replica not yet promoted, a full memory, a cluster re-sharding,
#: and a transaction that lost its connection while it watched a key (redis-py raises WatchError then).
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.WatchError,
)
#: Replies of the server that refuse writes for a while, which redis-py has no class for.
_UNAVAILABLE_REPLIES = ("NOREPLICAS", "MISCONF")


def redis_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis cannot serve the request now (a retry later may succeed)."""
    if isinstance(exc, REDIS_UNAVAILABLE):
        return True
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(_UNAVAILABLE_REPLIES)


def unavailable() -> Problem:
    """The 503 answer to a request Redis could not serve: retry after ``Retry-After`` seconds."""
    return Problem(
        503,
        "Service unavailable",
        f"the service's database (Redis) cannot be reached right now: retry in {UNAVAILABLE_RETRY_AFTER} s "
        "(an alert with the same Idempotency-Key, which makes sure it is sent once)",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )


def validation_problem(exc: ValidationError, where: str) -> Problem:
    errors = field_errors(exc, where)
    fields = ", ".join(e["field"] for e in errors)
    return Problem(422, "Invalid request", f"{len(errors)} field(s) are not valid: {fields}", errors=errors)


def cap_problem(exc: CapRefused) -> Problem:
    """The answer to a CAP document refused: each fault's location in the document (``/alert/info[2]/language``,
    or ``body``) as the field, with the schema's message or the reason."""
    errors = [{"field": f.location, "reason": f.reason} for f in exc.faults]
    where = ", ".join(dict.fromkeys(f.location for f in exc.faults))
    if exc.status == 413:
        return Problem(413, "Document too large", exc.faults[0].reason, errors=errors)
    return Problem(422, "Invalid CAP document", f"{len(errors)} fault(s) in the CAP document: {where}", errors=errors)


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer every error as a problem detail (denials 403, conflicts 409, Redis out of reach 503 with
    Retry-After); never leak a traceback."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except Denied as exc:
        return Problem(403, "Forbidden", exc.reason).response()
    except Conflict as exc:
        return Problem(409, "Conflict", str(exc)).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return Problem(exc.status, exc.reason, detail or exc.reason, headers=headers).response()
    except Exception as exc:
        if redis_unavailable(exc):
            log.warning("api.redis_unavailable", method=request.method, path=request.path, error=type(exc).__name__)
            return unavailable().response()
        log.exception("api.unexpected_error", method=request.method, path=request.path)
        return Problem(500, "Internal error", "the service failed; the error is logged").response()
