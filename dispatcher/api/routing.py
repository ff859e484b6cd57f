"""Declaring API operations once: the route, its input and output models, its document.

Every operation of the API is registered here with ``Api.operation``. The same
declaration installs the aiohttp route, parses and validates the request before the
handler runs, and writes the OpenAPI document, so the document cannot drift from
the routes (a test checks the app's router against it all the same).

Each operation with an actor declares who may call it (``authorize``, see
``dispatcher.api.guards``), and that check runs before its query and body are read: an
actor who may not touch a resource is refused (403, or 404) whatever they send, and never
learns from a 422 what a valid request would be. Every answer to an actor goes through
``policy.visible_to``, the per-role field policy, before it is rendered.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from dispatcher import exchange
from dispatcher.access import policy
from dispatcher.api.problems import PROBLEM, UNAVAILABLE_DESCRIPTION, Problem, ProblemModel, validation_problem
from dispatcher.core.models import Actor

ACTOR = web.RequestKey("actor", Actor)


@dataclass
class Call:
    """One validated request, as a handler receives it."""

    request: web.Request
    actor: Actor | None
    body: Any = None
    query: Any = None
    #: what the operation's ``authorize`` found while checking the actor may call it (the PLP, the alert...)
    scope: Any = None

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    @property
    def who(self) -> Actor:
        assert self.actor is not None, "public operations have no actor"
        return self.actor


@dataclass(frozen=True)
class Reply:
    """What a handler returns: a status, a model (or JSON-ready data, or text of ``media_type``), headers."""

    status: int
    content: BaseModel | dict[str, Any] | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


#: A handler answers with a ``Reply``, or, for a stream (server-sent events), with the response it prepared.
Handler = Callable[[Call], Awaitable[Reply | web.StreamResponse]]
BodyReader = Callable[[web.Request], Awaitable[Any]]
#: Checks that the call's actor may call the operation on the resources its path names, before the
#: query and body are read; raises ``Denied`` (403) or a 404 ``Problem``, returns what it found (``Call.scope``).
Authorize = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    responses: Mapping[int, type[BaseModel] | str | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    public: bool = False
    authorize: Authorize | None = None
    body_reader: BodyReader | None = None
    extra_content: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    body_required: bool = True
    #: other media types a status may be answered with, as text (a file: CSV, Markdown)
    alternatives: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    #: whether it needs Redis, so answers 503 (Retry-After) while Redis is out of reach
    needs_redis: bool = True

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Api:
    """The registry of operations, and the OpenAPI document built from it."""

    def __init__(self, *, title: str, version: str, description: str) -> None:
        self.title, self.version, self.description = title, version, description
        self._declared: list[Operation] = []
        self._sources: list[Callable[[], list[Operation]]] = []

    def extend(self, source: Callable[[], list[Operation]]) -> None:
        """Add the operations ``source`` gives, asked anew each time they are read (the vendors' webhooks,
        from the channel registry)."""
        self._sources.append(source)

    @property
    def operations(self) -> list[Operation]:
        """Every operation: those declared with ``operation``, and those of the sources now."""
        return self._declared + [op for source in self._sources for op in source()]

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        responses: Mapping[int, type[BaseModel] | str | None],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        public: bool = False,
        authorize: Authorize | None = None,
        body_reader: BodyReader | None = None,
        extra_content: Mapping[str, dict[str, Any]] | None = None,
        body_required: bool = True,
        alternatives: Mapping[int, tuple[str, ...]] | None = None,
        needs_redis: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Register a handler; raises ``TypeError`` if an operation with an actor does not say who may call it."""

        def register(handler: Handler) -> Handler:
            if public == (authorize is not None):
                raise TypeError(f"{handler.__name__}: an operation is public or has an authorize check, not both")
            self._declared.append(
                Operation(
                    method=method,
                    path=path,
                    handler=handler,
                    summary=summary,
                    tag=tag,
                    responses=responses,
                    body=body,
                    query=query,
                    public=public,
                    authorize=authorize,
                    body_reader=body_reader,
                    extra_content=extra_content or {},
                    body_required=body_required,
                    alternatives=alternatives or {},
                    needs_redis=needs_redis,
                )
            )
            return handler

        return register

    def install(self, app: web.Application, operations: list[Operation]) -> None:
        """Route ``operations`` (``self.operations`` as they were when the app was made)."""
        for op in operations:
            app.router.add_route(op.method, _constrained(op.path), _endpoint(op), name=op.operation_id)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every operation."""
        operations = self.operations
        models = _models(operations)
        _, defs = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
        paths: dict[str, dict[str, Any]] = {}
        for op in operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _describe(op)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "paths": paths,
            "components": {
                "schemas": defs.get("$defs", {}),
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
        }


def _endpoint(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        actor = None if op.public else request[ACTOR]
        call = Call(request=request, actor=actor)
        if op.authorize is not None:  # before anything the caller sent is read
            call.scope = await op.authorize(call)
        if op.query is not None:
            call.query = _validate(op.query, dict(request.query), "query")
        if request.body_exists:
            _check_charset(request)
        if op.body_reader is not None:
            call.body = await op.body_reader(request)
        elif op.body is not None and not op.body_required and not await _has_body(request):
            call.body = _validate(op.body, {}, "body")
        elif op.body is not None:
            call.body = _validate(op.body, await read_json(request), "body")
        reply = await op.handler(call)
        if isinstance(reply, web.StreamResponse):
            return reply
        if actor is not None and isinstance(reply.content, BaseModel):
            reply = dataclasses.replace(reply, content=policy.visible_to(actor, reply.content))
        return render(reply)

    endpoint.__name__ = op.operation_id
    return endpoint


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; raises a 400/415 problem naming what is wrong."""
    if request.content_type != "application/json":
        raise Problem(
            415,
            "Unsupported media type",
            f"send JSON with Content-Type: application/json, not {request.content_type!r}",
        )
    return json_body(await request.read(), request.charset)


def json_body(data: bytes, charset: str | None) -> Any:
    """The value of a JSON body in ``charset`` (default UTF-8); raises a 400 problem naming what is wrong."""
    try:
        return json.loads(data.decode(_text_codec(charset)))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep, integer too long
        if isinstance(exc, UnicodeDecodeError):
            reason = f"not {exc.encoding} text: byte {exc.start} cannot be read"
        else:
            reason = str(exc) if isinstance(exc, json.JSONDecodeError) else f"not readable: {type(exc).__name__}"
        raise Problem(
            400, "Malformed JSON", "the body is not valid JSON", errors=[{"field": "body", "reason": reason}]
        ) from None


async def read_cap(request: web.Request) -> bytes:
    """The bytes of a posted CAP document; raises a 415 problem for another media type (XML says its own encoding)."""
    if request.content_type not in exchange.MEDIA_TYPES:
        raise Problem(
            415,
            "Unsupported media type",
            f"send a CAP 1.2 document with Content-Type: {exchange.CAP_MEDIA_TYPE}, not {request.content_type!r}",
        )
    return await request.read()


async def read_form(request: web.Request) -> dict[str, str]:
    """The fields of a form post (``application/x-www-form-urlencoded``); raises a 400 problem for bad bytes."""
    try:
        return {key: str(value) for key, value in (await request.post()).items()}
    except ValueError as exc:  # aiohttp decodes the fields strictly in the declared charset (default UTF-8)
        reason = f"not {exc.encoding} text" if isinstance(exc, UnicodeDecodeError) else "not readable"
        raise Problem(
            400, "Malformed form", "the form cannot be read", errors=[{"field": "body", "reason": reason}]
        ) from None


def _check_charset(request: web.Request) -> None:
    """Refuse a body in a charset Python does not know (aiohttp would fail decoding it), whatever the route."""
    _text_codec(request.charset)


def _text_codec(charset: str | None) -> str:
    """``charset`` (default UTF-8) if Python reads text in it; else a 415 problem naming it."""
    try:  # LookupError for an unknown or non-text codec (base64); an empty input would not look the codec up
        b"-".decode(charset or "utf-8")
    except ValueError:
        pass
    except LookupError:
        raise Problem(415, "Unsupported media type", f"unknown charset {charset!r}: send UTF-8 text") from None
    return charset or "utf-8"


async def _has_body(request: web.Request) -> bool:
    return request.body_exists and bool(await request.read())


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, where) from None


def render(reply: Reply) -> web.Response:
    if reply.content is None:
        return web.Response(status=reply.status, headers=dict(reply.headers))
    if isinstance(reply.content, str):
        return web.Response(
            status=reply.status, text=reply.content, content_type=reply.media_type, headers=dict(reply.headers)
        )
    text = (
        reply.content.model_dump_json()
        if isinstance(reply.content, BaseModel)
        else json.dumps(reply.content, ensure_ascii=False)
    )
    return web.Response(status=reply.status, text=text, content_type="application/json", headers=dict(reply.headers))


def _models(operations: list[Operation]) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {"ProblemModel": ProblemModel}
    for op in operations:
        for model in (op.body, op.query, *op.responses.values()):
            if model is not None and not isinstance(model, str):
                seen[model.__name__] = model
    return list(seen.values())


_PATH_PARAM = re.compile(r"{([a-z_]+)}")

#: What each path parameter looks like. Routes only match these, so that a fixed segment
#: (``/v1/alerts/preview``, ``/members/import``) is never read as an id; the document says so too.
PATH_PATTERNS = {
    "alert_id": "[0-9a-f]{16}",
    "member_id": "[0-9a-f]{16}",
    "sector_id": "[0-9a-f]{16}",
    "drill_id": "[0-9a-f]{16}",
    "request_id": "[0-9a-f]{16}",
    "notification_id": "[0-9a-f]{16}",
    "plp_id": "[a-z0-9][a-z0-9-]{0,63}",
    "actor_id": "[a-z0-9][a-z0-9-]{0,63}",
    "token_id": "tok_[0-9a-f]{1,32}",
    "token": "[A-Za-z0-9._-]{1,400}",
}


def _constrained(path: str) -> str:
    return _PATH_PARAM.sub(lambda m: f"{{{m.group(1)}:{PATH_PATTERNS[m.group(1)]}}}", path)


def _path_schema(name: str) -> dict[str, str]:
    return {"type": "string", "pattern": f"^{PATH_PATTERNS[name]}$"}


def _describe(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in _PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in schema.get("required", []), "schema": prop}
            )
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": {
            str(status): _response(model, also=op.alternatives.get(status, ()))
            for status, model in sorted(op.responses.items())
        }
        | _unavailable(op)
        | {"default": _response(ProblemModel, problem=True)},
    }
    if op.public:
        doc["security"] = []
    if op.body is not None:
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}}
        doc["requestBody"] = {"required": op.body_required, "content": content | dict(op.extra_content)}
    elif op.extra_content:  # a body of another format only (a CAP document)
        doc["requestBody"] = {"required": op.body_required, "content": dict(op.extra_content)}
    return doc


def _schema_of(media_type: str) -> dict[str, Any]:
    """The schema of an alternative media type: a problem's, or text."""
    if media_type == PROBLEM:
        return {"schema": {"$ref": f"#/components/schemas/{ProblemModel.__name__}"}}
    return {"schema": {"type": "string"}}


def _unavailable(op: Operation) -> dict[str, Any]:
    """The 503 of an operation that needs Redis (unless it documents its own 503), with its Retry-After."""
    if not op.needs_redis or 503 in op.responses:
        return {}
    retry_after = {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
    doc = _response(ProblemModel, problem=True)
    return {"503": doc | {"description": UNAVAILABLE_DESCRIPTION, "headers": {"Retry-After": retry_after}}}


def _response(
    model: type[BaseModel] | str | None, *, problem: bool = False, also: tuple[str, ...] = ()
) -> dict[str, Any]:
    if model is None:
        return {"description": "No content"}
    if isinstance(model, str):  # a media type: an HTML page, TwiML; or a problem, when the route does not match
        content = {model: {"schema": {"type": "string"}}} | {other: _schema_of(other) for other in also}
        return {"description": f"A {model} document", "content": content}
    media = PROBLEM if problem else "application/json"
    return {
        "description": (model.__doc__ or model.__name__).strip().splitlines()[0],
        "content": {media: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
        | {other: {"schema": {"type": "string"}} for other in also},
    }
