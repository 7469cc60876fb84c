"""Kannel's delivery reports: the dlr-url callback, served by the SMS delivery process.

Kannel calls ``GET {base}/dlr/{job key, base64url}/{hmac}?type=%d&smsc=%i``. ``type`` 1 is
delivered to the phone, 2 not delivered to the phone, 16 refused by the SMSC; 4 and 8 are
intermediate (queued / accepted by the SMSC) and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from consumers.sinks.sms import (
    DLR_DELIVERED,
    DLR_SMSC_NACK,
    DLR_UNDELIVERED,
    DlrSigner,
)
from schemas.events import DeliveryStatus


@dataclass(frozen=True)
class Report:
    job_key: str
    status: DeliveryStatus
    detail: str


def interpret(job_key: str, dlr_type: int, smsc: str = "") -> Report | None:
    """A final outcome for a DLR type, or None for an intermediate one."""
    where = f" (smsc {smsc})" if smsc else ""
    if dlr_type & DLR_DELIVERED:
        return Report(job_key, DeliveryStatus.DELIVERED, f"dlr {dlr_type}: delivered{where}")
    if dlr_type & (DLR_UNDELIVERED | DLR_SMSC_NACK):
        what = "not delivered to the phone" if dlr_type & DLR_UNDELIVERED else \
            "refused by the SMSC"
        return Report(job_key, DeliveryStatus.FAILED, f"dlr {dlr_type}: {what}{where}")
    return None


def dlr_app(signer: DlrSigner, on_report: Callable[[Report], None]) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        job_key = signer.job_key(request.match_info["key"], request.match_info["mac"])
        if job_key is None:
            return web.Response(status=403, text="unknown report")
        try:
            dlr_type = int(request.query.get("type", ""))
        except ValueError:
            return web.Response(status=400, text="type must be a number")
        report = interpret(job_key, dlr_type, request.query.get("smsc", ""))
        if report is not None:
            on_report(report)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/dlr/{key}/{mac}", handle)
    return app
