"""A PLP's annual evaluation: JSON for the console and the command line, CSV and Markdown files to hand out."""

from __future__ import annotations

from pydantic import Field

from dispatcher import reports
from dispatcher.api import guards
from dispatcher.api.problems import Problem
from dispatcher.api.routing import Call, Reply
from dispatcher.api.services import api, services
from dispatcher.api.views import Query
from dispatcher.core.models import Plp
from dispatcher.reports import Evaluation, EvaluationFormat


class EvaluationQuery(Query):
    year: int = Field(ge=2000, le=9999, description="The calendar year, in the PLP's time zone (not after this one)")
    format: EvaluationFormat = Field(
        default=EvaluationFormat.JSON, description="json; csv or md: the same figures as a file"
    )


@api.operation(
    "GET",
    "/v1/plps/{plp_id}/evaluation",
    summary="A PLP's annual evaluation: members, alerts, reach, acknowledgements, replies, cost (JSON, CSV, Markdown)",
    tag="reports",
    query=EvaluationQuery,
    authorize=guards.evaluation_reader,
    responses={200: Evaluation},
    alternatives={200: tuple(media for media, _ in reports.FILE_FORMATS.values())},
)
async def plp_evaluation(call: Call) -> Reply:
    plp: Plp = call.scope
    query: EvaluationQuery = call.query
    svc = services(call)
    try:
        evaluation = await reports.evaluate(svc.store, plp, query.year, settings=svc.runtime.settings)
    except ValueError as exc:
        raise Problem(422, "Invalid request", str(exc), errors=[{"field": "query.year", "reason": str(exc)}]) from None
    if query.format is EvaluationFormat.JSON:
        return Reply(200, evaluation)
    media_type, _ = reports.FILE_FORMATS[query.format]
    disposition = f'attachment; filename="{reports.filename(evaluation, query.format)}"'
    return Reply(
        200, reports.render(evaluation, query.format), {"Content-Disposition": disposition}, media_type=media_type
    )
