"""A generic JSON HTTP gateway: messages are POSTed in batches, receipts come back through the
webhook `POST /v1/carriers/http/receipts` (header X-Carrier-Secret).

Request: {"messages": [{"ref", "to", "from", "text", "encoding"}]}
Response: {"results": [{"ref", "message_id" | null, "error" | null, "permanent": bool}]}
429 and 5xx mean "try again later"; an answer that never came means the batch may or may not
have been taken: its messages are never resent.
"""

from __future__ import annotations

import httpx

from dispatch.carriers.base import CarrierUnavailable, Feedback, Outgoing, Submitted
from dispatch.carriers.guard import refuse_synthetic_base_off_loopback
from kit.errors import ConfigurationError
from kit.settings import HttpGatewaySettings
from sales.messages.service import measure


class HttpGateway:
    name = "http"

    def __init__(self, settings: HttpGatewaySettings) -> None:
        if not settings.url:
            raise ConfigurationError("RENTAL_HTTP_GATEWAY_URL is not set")
        refuse_synthetic_base_off_loopback(settings.url)
        self.url: str = settings.url
        self.token = settings.token
        self.client = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0))

    def submit(self, messages: list[Outgoing]) -> tuple[list[Submitted], Feedback]:
        body = {
            "messages": [
                {
                    "ref": m.ref,
                    "to": m.number,
                    "from": m.sender,
                    "text": m.text,
                    "encoding": m.encoding,
                }
                for m in messages
            ]
        }
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self.client.post(self.url, json=body, headers=headers)
        except httpx.ConnectError as exc:  # nothing left: safe to send again later
            raise CarrierUnavailable(f"gateway unreachable ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:  # sent, but no answer: maybe taken, never resent
            raise CarrierUnavailable(
                f"no answer from the gateway ({type(exc).__name__})",
                uncertain=[m.ref for m in messages],
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise CarrierUnavailable(f"gateway answered {response.status_code}")
        response.raise_for_status()
        parts = {m.ref: measure(m.text).segments for m in messages}
        results = []
        for r in response.json()["results"]:
            ref = int(r["ref"])
            results.append(
                Submitted(
                    ref,
                    r.get("message_id"),
                    parts=parts.get(ref, 1),
                    error=r.get("error"),
                    permanent=bool(r.get("permanent", True)),
                )
            )
        return results, Feedback()
