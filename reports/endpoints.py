"""HTTP: the send report of an order, as JSON (default), CSV, HTML or PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse

from kit import clock
from kit import http_errors as errors
from kit.text import SafeText
from reports import render, service
from reports.schemas import Report
from sales.accounts.deps import IdPath, PrincipalDep, SessionDep

router = APIRouter(tags=["reports"])
Format = Annotated[
    SafeText,
    Query(
        max_length=20,
        description="json (default), csv, html or pdf",
        json_schema_extra={"enum": list(service.FORMATS)},
    ),
]


def _download(body: bytes | str, media_type: str, name: str) -> Response:
    return Response(
        content=body,
        media_type=media_type,
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get(
    "/orders/{order_id}/report",
    response_model=Report,
    summary="The send report: volumes, outcomes, opt-outs, cost, timeline, breakdowns",
    responses={
        200: {
            "content": {
                "text/csv": {},
                "text/html": {},
                "application/pdf": {},
            }
        },
        **errors.responses(
            404,
            409,
            conflict="the order has not started sending (current_status says where)",
        ),
    },
)
def get_report(
    order_id: IdPath, who: PrincipalDep, session: SessionDep, format: Format = "json"
) -> Report | Response:
    fmt = service.check_format(format)
    report = service.get_report(session, who, order_id, clock.now())
    name = f"report-{report.order_id}"
    if fmt == "csv":
        return _download(render.report_csv(report), "text/csv; charset=utf-8", f"{name}.csv")
    if fmt == "html":
        return HTMLResponse(render.report_html(report))
    if fmt == "pdf":
        return _download(render.pdf(render.report_html(report)), "application/pdf", f"{name}.pdf")
    return report
