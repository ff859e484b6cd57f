"""Errors as RFC 9457 problem details (``application/problem+json``), naming the field at fault."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from dispatcher.policy import Denied
from dispatcher.store import Conflict
from dispatcher.validation import field_errors

log = structlog.get_logger(__name__)


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
            content_type="application/problem+json",
            headers=self.headers,
        )


def validation_problem(exc: ValidationError, where: str) -> Problem:
    errors = field_errors(exc, where)
    fields = ", ".join(e["field"] for e in errors)
    return Problem(422, "Invalid request", f"{len(errors)} field(s) are not valid: {fields}", errors=errors)


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer every error as a problem detail (denials 403, conflicts 409); never leak a traceback."""
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
    except Exception:
        log.exception("api.unexpected_error", method=request.method, path=request.path)
        return Problem(500, "Internal error", "the service failed; the error is logged").response()
