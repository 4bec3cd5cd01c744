"""Association network HTTP endpoints: a customer's component for an investigator (``risk.review``: it shows
which other customers share devices, IPs, phones, cards, payout accounts or e-mails with this one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from finloop.api.deps import CurrentReader
from finloop.api.types import Line
from finloop.risk.network import service
from finloop.risk.network.schemas import CustomerNetworkRead, read_network

router = APIRouter(tags=["risk"])

CustomerId = Annotated[Line, Path(min_length=1, max_length=100)]
REVIEW = "risk.review"


@router.get("/risk/network/customers/{customer_id}", response_model=CustomerNetworkRead,
            summary="A customer's association network component: members, shared values (masked), hubs",
            responses={404: {"description": "network_customer_not_found: no decided event of this customer"}})
def get_customer_network(customer_id: CustomerId, reader: CurrentReader) -> CustomerNetworkRead:
    reader.principal.require(REVIEW)
    return reader.run(lambda uow: read_network(service.view(uow, reader.tenant_id, customer_id)))
