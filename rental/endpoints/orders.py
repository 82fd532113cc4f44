"""HTTP: orders and the actions on them. Parse, call the service, return."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from dispatch import waves
from kit import clock
from kit import http_errors as errors
from sales.accounts.deps import (
    IdPath,
    Limit,
    Offset,
    OrganisationQuery,
    PrincipalDep,
    SessionDep,
    StaffDep,
)
from sales.accounts.schemas import Principal
from sales.accounts.service import organisation_name
from sales.idempotency.guard import Idempotent, IdempotentRoute
from sales.invoices import service as invoices
from sales.orders import access, lifecycle, payments
from sales.orders import view as order_view
from sales.orders.models import Order
from sales.orders.schemas import (
    Cancellation,
    OrderCreate,
    OrderList,
    OrderOut,
    OrderRevision,
    OrderStaffOut,
    PaymentCreate,
    PaymentOut,
    PaymentRecorded,
    Reason,
)
from sales.orders.states import OrderStatus
from segmentation import runtime

router = APIRouter(tags=["orders"], route_class=IdempotentRoute)


def _view(session: SessionDep, order: Order, who: Principal) -> OrderOut:
    """The order with its send plan (waves per recipients' calendar)."""
    out = order_view.view(session, order, who)
    out.waves = [w.model_dump(mode="json") for w in waves.for_order(session, order, clock.now())]
    return out


OrderResponse = OrderStaffOut | OrderOut
# What can be done with an order once placed (OpenAPI links: clients and fuzzers follow them).
ORDER_LINKS = {
    "GetOrder": {
        "operationId": "get_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "ReviseOrder": {
        "operationId": "revise_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "CancelOrder": {
        "operationId": "cancel_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "RecordPayment": {
        "operationId": "record_payment",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "ApproveContent": {
        "operationId": "approve_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "RejectContent": {
        "operationId": "reject_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "DispatchNow": {
        "operationId": "dispatch_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "DeclineCancellation": {
        "operationId": "decline_cancellation",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "HoldOrder": {
        "operationId": "hold_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "ReleaseOrder": {
        "operationId": "release_order",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "AcceptVolume": {
        "operationId": "accept_volume",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "GetReport": {
        "operationId": "get_report",
        "parameters": {"order_id": "$response.body#/id"},
    },
    "GetDepositInvoice": {
        "operationId": "get_invoice",
        "parameters": {"invoice_id": "$response.body#/invoices/0"},
    },
}


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderResponse,
    summary="Order a quantity of a quote's segment; the 30% deposit invoice is issued",
    dependencies=[Idempotent],
    responses={
        201: {"links": ORDER_LINKS},
        **errors.responses(404, 409, 415, not_found="no such quote", conflict="the quote expired"),
    },
)
def create_order(body: OrderCreate, who: PrincipalDep, session: SessionDep) -> OrderOut:
    order = lifecycle.create_order(session, who, body)
    return _view(session, order, who)


@router.get("/orders", response_model=OrderList, summary="Orders, newest first")
def list_orders(
    who: PrincipalDep,
    session: SessionDep,
    status_: OrderStatus | None = Query(default=None, alias="status"),
    organisation_id: OrganisationQuery = None,
    content_review: str | None = Query(default=None, pattern="^(pending|approved|rejected)$"),
    cancellation_requested: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> OrderList:
    orders = access.list_orders(
        session,
        who,
        organisation_id=organisation_id,
        status=status_,
        content_status=content_review,
        cancellation_requested=cancellation_requested,
        limit=limit,
        offset=offset,
    )
    return OrderList(items=[_view(session, o, who) for o in orders], limit=limit, offset=offset)


@router.get("/orders/{order_id}", response_model=OrderResponse, responses=errors.responses(404))
def get_order(order_id: IdPath, who: PrincipalDep, session: SessionDep) -> OrderOut:
    return _view(session, access.get_order(session, who, order_id), who)


@router.patch(
    "/orders/{order_id}",
    response_model=OrderResponse,
    summary="Revise the message or sender (before scheduling; the price may not change)",
    responses=errors.responses(404, 409, 415),
)
def revise_order(
    order_id: IdPath, body: OrderRevision, who: PrincipalDep, session: SessionDep
) -> OrderOut:
    return _view(session, lifecycle.revise(session, who, order_id, body), who)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderResponse,
    summary="Cancel (unpaid), or ask an account manager to (confirmed); account managers accept",
    responses=errors.responses(404, 409, 415),
)
def cancel_order(
    order_id: IdPath,
    who: PrincipalDep,
    session: SessionDep,
    body: Cancellation | None = None,
) -> OrderOut:
    body = body or Cancellation()
    order = lifecycle.cancel(session, who, order_id, body.reason, body.refund_deposit)
    return _view(session, order, who)


@router.post(
    "/orders/{order_id}/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentRecorded,
    summary="Record a payment received (account managers); idempotent on the reference",
    responses=errors.responses(403, 404, 409, 415),
)
def record_payment(
    order_id: IdPath,
    body: PaymentCreate,
    who: StaffDep,
    session: SessionDep,
    response: Response,
) -> PaymentRecorded:
    recorded = payments.record_payment(
        session,
        who,
        order_id,
        body.reference,
        body.amount_cents,
        body.received_on,
        runtime.current(),
    )
    if not recorded.created:
        response.status_code = status.HTTP_200_OK  # the same payment, recorded before
    order = access.get_order(session, who, order_id)
    return PaymentRecorded(
        payment=PaymentOut(
            reference=recorded.payment.reference,
            amount_cents=recorded.payment.amount_cents,
            received_on=recorded.payment.received_on,
            invoice_id=recorded.invoice.id,
            replayed=not recorded.created,
        ),
        invoice=invoices.view(
            session, recorded.invoice, organisation_name(session, order.organisation_id)
        ),
        order=_view(session, order, who),
    )


@router.post(
    "/orders/{order_id}/approve",
    response_model=OrderResponse,
    responses=errors.responses(403, 404, 409),
)
def approve_order(order_id: IdPath, who: StaffDep, session: SessionDep) -> OrderOut:
    return _view(session, lifecycle.approve(session, who, order_id), who)


@router.post(
    "/orders/{order_id}/reject",
    response_model=OrderResponse,
    responses=errors.responses(403, 404, 409, 415),
)
def reject_order(order_id: IdPath, body: Reason, who: StaffDep, session: SessionDep) -> OrderOut:
    return _view(session, lifecycle.reject(session, who, order_id, body.reason), who)


@router.post(
    "/orders/{order_id}/dispatch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderResponse,
    summary="Send a scheduled order now (account managers); the legal windows still apply",
    responses=errors.responses(403, 404, 409),
)
def dispatch_order(order_id: IdPath, who: StaffDep, session: SessionDep) -> OrderOut:
    return _view(session, lifecycle.request_dispatch(session, who, order_id), who)


@router.post(
    "/orders/{order_id}/decline-cancellation",
    response_model=OrderResponse,
    summary="Decline a client's cancellation request: the order stays firm",
    responses=errors.responses(403, 404, 409, 415),
)
def decline_cancellation(
    order_id: IdPath, body: Reason, who: StaffDep, session: SessionDep
) -> OrderOut:
    order = lifecycle.decline_cancellation(session, who, order_id, body.reason)
    return _view(session, order, who)


@router.post(
    "/orders/{order_id}/hold",
    response_model=OrderResponse,
    responses=errors.responses(403, 404, 409, 415),
)
def hold_order(order_id: IdPath, body: Reason, who: StaffDep, session: SessionDep) -> OrderOut:
    return _view(session, lifecycle.hold(session, who, order_id, body.reason), who)


@router.post(
    "/orders/{order_id}/release",
    response_model=OrderResponse,
    responses=errors.responses(403, 404, 409),
)
def release_order(order_id: IdPath, who: StaffDep, session: SessionDep) -> OrderOut:
    order = lifecycle.release_hold(session, who, order_id, runtime.current())
    return _view(session, order, who)


@router.post(
    "/orders/{order_id}/accept-volume",
    response_model=OrderResponse,
    summary="Held because the segment fell short: take the offered quantity, re-priced",
    responses=errors.responses(404, 409),
)
def accept_volume(order_id: IdPath, who: PrincipalDep, session: SessionDep) -> OrderOut:
    return _view(session, lifecycle.accept_volume(session, who, order_id), who)
