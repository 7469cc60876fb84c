"""The intake's HTTP shell: ``POST /reports``, ``GET /reports/{id}`` and Kannel's callback.

Thin on purpose: validation is the pydantic models, reading a report is ``producers.reports``,
SMS commands are ``producers.intake.kannel``. What lives here is the order of the checks:

    size (413) -> API key (401) -> body (422) -> channel allowed for the key (403)
    -> reporter phone (422) -> same id seen? (200 same answer / 409 other content)
    -> rate limit (429 + Retry-After) -> Kafka ack (201; 503 if Kafka does not ack)

``POST /subscribers`` and ``DELETE /subscribers/{id}`` (app key only) put a subscription, or
its tombstone, on the compacted ``subscribers`` topic and answer after Kafka's ack; both are
idempotent: the same request twice leaves the same record.

A report is answered only after Kafka acknowledged it (``acks=all``, the producer future's
``.get()``), so a 201 means "on ``reports.raw``", byte for byte as the client sent it.

Phone numbers never reach a log line or a metric label: logs carry the reporter hash, and
uvicorn's access log is off because Kannel's callback URL carries the sender in its query.
Metrics are labelled by channel and outcome only.
"""

# No "from __future__ import annotations": FastAPI must evaluate the Annotated[..., Depends(
# closure)] hints inside create_app at definition time.

import hashlib
import hmac
import logging
import secrets
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import AwareDatetime, BaseModel, Field

from producers.intake.kannel import RATE_LIMITED, decide, subscriber_id_for
from producers.intake.phones import (
    InvalidPhone,
    identity_hash,
    looks_like_phone,
    normalize_reporter,
    to_e164,
)
from producers.intake.ratelimit import RateLimiter
from producers.intake.store import ReportRecord, ReportStore
from producers.publisher import Publisher
from producers.reports import IDENTITY_HEADER, normalize
from producers.subscribers import SubscriptionRequest, subscriber_from_request
from schemas.events import Hazard, ReporterKind, utc_now
from schemas.geography import Geography, load_geography
from schemas.reports import (
    REPORT_ID_PATTERN,
    CitizenReport,
    ReportChannel,
    ReportSubmission,
    Route,
)
from schemas.settings import IntakeSettings, Settings
from schemas.topics import REPORTS_RAW, SUBSCRIBERS

log = logging.getLogger("kentongan.intake")

Role = Literal["app", "callcentre"]
# Which channels each key may file. Call-centre agents also type in SMS read out on the phone.
ALLOWED_CHANNELS: dict[Role, frozenset[ReportChannel]] = {
    "app": frozenset({ReportChannel.APP}),
    "callcentre": frozenset({ReportChannel.CALLCENTRE, ReportChannel.SMS}),
}
IDEMPOTENCY_KEY_MAX = 128
# Labels are bounded enums: never a reporter, phone or report id.
SUBMISSIONS = Counter("kentongan_intake_submissions", "report submissions by outcome",
                      ["channel", "outcome"])
SMS_COMMANDS = Counter("kentongan_intake_sms", "inbound SMS by kind", ["kind"])
SUBSCRIPTIONS = Counter("kentongan_intake_subscriptions", "app subscription changes by action",
                        ["action"])
KAFKA_RETRY_AFTER_S = 5


class ReportAccepted(BaseModel):
    report_id: str
    duplicate: bool = Field(description="true when this id was already accepted (status 200)")
    state_url: str


class ReportState(BaseModel):
    report_id: str
    state: Literal["received", "located", "attached"] = Field(
        description="received: on reports.raw; located: placed in a kelurahan; "
                    "attached: part of an incident (see incident_ids)")
    received_at: AwareDatetime
    channel: ReportChannel
    hazard: Hazard
    area_code: str | None
    area_name: str | None
    kecamatan_name: str | None
    location_confidence: float
    route: Route = Field(description="callcentre when no kelurahan could be resolved")
    incident_ids: list[str]


class Problem(BaseModel):
    detail: Any


class Subscription(BaseModel):
    subscriber_id: str = Field(description="the id to DELETE; the same for the same phone")
    areas: list[str]
    channels: list[str]
    language: str


def _field_error(field: str, msg: str) -> HTTPException:
    # Same shape as FastAPI's own 422s, so clients parse one format for every field error.
    return HTTPException(422, [{"loc": ["body", field], "msg": msg, "type": "value_error"}])


class Intake:
    """State shared by the handlers; every method here is synchronous and thread-safe."""

    def __init__(self, settings: IntakeSettings, publisher: Publisher, geography: Geography,
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self.publisher = publisher
        self.geography = geography
        self.clock = clock
        self.store = ReportStore(settings.remember_reports)
        self.limiter = RateLimiter(settings.rate_limits)
        # subscriber id -> kelurahan codes, so DAFTAR adds to what the sender already has.
        self.subscriptions: dict[str, list[str]] = {}
        self.subscriptions_lock = threading.Lock()

    def role_for(self, key: str | None) -> Role | None:
        if not key:
            return None
        for role, secret in (("app", self.settings.app_api_key),
                             ("callcentre", self.settings.callcentre_api_key)):
            if secret is not None and secrets.compare_digest(
                    key.encode(), secret.get_secret_value().encode()):
                return role  # type: ignore[return-value]  # the literal tuple above
        return None

    def reporter_kind(self, role: Role, reporter: str, token: str | None) -> ReporterKind:
        """How this reporter's identity is known (recorded with the report on Kafka)."""
        if role == "callcentre":
            return ReporterKind.CALLCENTRE_TICKET
        secret = self.settings.app_account_secret
        if secret is not None and token:
            expected = hmac.new(secret.get_secret_value().encode(), reporter.encode(),
                                hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, token.strip().lower()):
                return ReporterKind.APP_ACCOUNT
        return ReporterKind.UNVERIFIED

    def _publish(self, spec: Any, key: str, value: bytes | BaseModel | None,
                 kind: ReporterKind | None = None) -> None:
        headers = None if kind is None else [(IDENTITY_HEADER, kind.value.encode())]
        try:
            self.publisher.send(spec, key, value, headers=headers).get(
                timeout=self.settings.kafka_timeout_s)
        except Exception as exc:  # any producer failure means "not on Kafka": say so, retryable
            log.error("kafka did not acknowledge %s record %s: %s", spec.name, key, exc)
            raise HTTPException(503, "report not stored: Kafka did not acknowledge; retry",
                                headers={"Retry-After": str(KAFKA_RETRY_AFTER_S)}) from None

    def accept(self, submission: ReportSubmission, raw: bytes, role: Role,
               idempotency_key: str | None,
               account_token: str | None = None) -> tuple[int, ReportAccepted]:
        if submission.channel not in ALLOWED_CHANNELS[role]:
            raise HTTPException(403, f"channel {submission.channel.value!r} is not allowed "
                                     f"for the {role} API key")
        ahead = (submission.reported_at - utc_now()).total_seconds()
        if ahead > self.settings.max_clock_skew_s:
            raise _field_error("reported_at", "lies in the future: send the time the citizen "
                                              "reported, with its zone")
        if submission.channel is ReportChannel.SMS and not looks_like_phone(submission.reporter):
            raise _field_error("reporter", "an sms report needs the sender's phone number")
        try:
            reporter = normalize_reporter(submission.reporter)
        except InvalidPhone as exc:
            raise _field_error("reporter", str(exc)) from None

        if submission.report_id:
            report_id = submission.report_id
        elif idempotency_key:
            # Derived, not stored: the same key gives the same id even after a restart.
            digest = hashlib.sha256(f"{role}\n{idempotency_key}".encode()).hexdigest()
            report_id = f"r-{digest[:24]}"
        else:
            report_id = f"r-{uuid.uuid4().hex[:24]}"
        canonical = submission.model_dump_json(exclude={"report_id"})
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        who = identity_hash(reporter)

        with self.store.lock_for(report_id):
            seen = self.store.get(report_id)
            if seen is not None:
                if seen.fingerprint != fingerprint:
                    raise HTTPException(409, f"report_id {report_id!r} was already used for a "
                                             "different report")
                log.info("duplicate report %s from %s", report_id, who)
                SUBMISSIONS.labels(submission.channel.value, "duplicate").inc()
                return 200, self._accepted(report_id, duplicate=True)
            wait = self.limiter.acquire(submission.channel, who, self.clock())
            if wait is not None:
                log.info("rate-limited %s reporter %s for %ss", submission.channel, who, wait)
                SUBMISSIONS.labels(submission.channel.value, "rate_limited").inc()
                raise HTTPException(429, f"too many reports from this reporter; retry in {wait}s",
                                    headers={"Retry-After": str(wait)})
            self._publish(REPORTS_RAW, report_id, raw,
                          self.reporter_kind(role, submission.reporter, account_token))
            self.store.add(ReportRecord(
                report_id, fingerprint, utc_now(),
                normalize(submission, self.geography, report_id=report_id)))
        log.info("accepted report %s channel=%s reporter=%s", report_id,
                 submission.channel.value, who)
        SUBMISSIONS.labels(submission.channel.value, "accepted").inc()
        return 201, self._accepted(report_id, duplicate=False)

    @staticmethod
    def _accepted(report_id: str, *, duplicate: bool) -> ReportAccepted:
        return ReportAccepted(report_id=report_id, duplicate=duplicate,
                              state_url=f"/reports/{report_id}")

    def state(self, report_id: str) -> ReportState | None:
        record = self.store.get(report_id)
        if record is None:
            return None
        n = record.normalized
        state: Literal["received", "located", "attached"] = (
            "attached" if record.incidents else "located" if n.area_code else "received")
        return ReportState(
            report_id=report_id, state=state, received_at=record.received_at, channel=n.channel,
            hazard=n.hazard, area_code=n.area_code, area_name=n.area_name,
            kecamatan_name=n.kecamatan_name, location_confidence=n.location_confidence,
            route=n.route, incident_ids=list(record.incidents))

    def sms(self, sender: str, text: str, stamp: str | None) -> str:
        """Kannel's MO message -> the reply text (Kannel sends it back to the sender)."""
        try:
            phone = kannel_sender_e164(sender)
        except InvalidPhone:
            raise HTTPException(422, [{"loc": ["query", "sender"], "msg": "not a valid phone "
                                       "number", "type": "value_error"}]) from None
        who = identity_hash(phone)
        if self.limiter.acquire(ReportChannel.SMS, who, self.clock()) is not None:
            log.info("rate-limited sms from %s", who)
            SMS_COMMANDS.labels("rate_limited").inc()
            return RATE_LIMITED
        received_at = utc_now()
        with self.subscriptions_lock:
            known = list(self.subscriptions.get(subscriber_id_for(phone), []))
        decision = decide(phone_e164=phone, text=text, received_at=received_at,
                          stamp=stamp or received_at.isoformat(), geography=self.geography,
                          known_areas=known)
        SMS_COMMANDS.labels(decision.kind).inc()
        if decision.subscriber is not None:
            sub = decision.subscriber
            self._publish(SUBSCRIBERS, sub.subscriber_id, sub)
            with self.subscriptions_lock:
                self.subscriptions[sub.subscriber_id] = list(sub.areas) if sub.active else []
            log.info("subscriber %s active=%s areas=%s", sub.subscriber_id, sub.active, sub.areas)
        if decision.report_id is not None and decision.report_body is not None:
            with self.store.lock_for(decision.report_id):
                if self.store.get(decision.report_id) is None:
                    # The sender's number is the one the SMS gateway saw: a verified phone.
                    self._publish(REPORTS_RAW, decision.report_id, decision.report_body,
                                  ReporterKind.PHONE)
                    report = CitizenReport.model_validate_json(decision.report_body)
                    fingerprint = hashlib.sha256(decision.report_body).hexdigest()
                    self.store.add(ReportRecord(decision.report_id, fingerprint, received_at,
                                                normalize(report, self.geography)))
            log.info("accepted sms report %s from %s", decision.report_id, who)
        return decision.reply

    def subscribe(self, request: SubscriptionRequest) -> Subscription:
        try:
            subscriber = subscriber_from_request(request, self.geography)
        except ValueError as exc:
            field, _, why = str(exc).partition(": ")
            raise _field_error(field, why) from None
        self._publish(SUBSCRIBERS, subscriber.subscriber_id, subscriber)
        self.note_subscriber(subscriber.subscriber_id, subscriber.areas, True)
        log.info("subscriber %s areas=%s channels=%s", subscriber.subscriber_id,
                 subscriber.areas, [c.value for c in subscriber.channels])
        SUBSCRIPTIONS.labels("subscribe").inc()
        return Subscription(subscriber_id=subscriber.subscriber_id, areas=subscriber.areas,
                            channels=[c.value for c in subscriber.channels],
                            language=subscriber.language)

    def unsubscribe(self, subscriber_id: str) -> None:
        """A tombstone: the planner forgets the person at once, compaction forgets the phone."""
        self._publish(SUBSCRIBERS, subscriber_id, None)
        self.note_subscriber(subscriber_id, [], False)
        log.info("subscriber %s deleted", subscriber_id)
        SUBSCRIPTIONS.labels("unsubscribe").inc()

    def note_subscriber(self, subscriber_id: str, areas: list[str], active: bool) -> None:
        with self.subscriptions_lock:
            self.subscriptions[subscriber_id] = list(areas) if active else []


def kannel_sender_e164(sender: str) -> str:
    """Kannel's %p as SMSCs deliver it: "+62812...", "62812..." or "0812..."."""
    digits = sender.strip()
    if digits.isdigit() and not digits.startswith("0"):
        digits = f"+{digits}"  # international form without the plus
    return to_e164(digits)


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413 before anything parses them.

    Buffers the (small) body once so chunked uploads without Content-Length are bounded too."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: MutableMapping[str, Any],
                       receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
                       send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = JSONResponse({"detail": f"request body over {self.max_bytes} bytes"}, 413)
        if length is not None:
            if not length.isdigit():
                await JSONResponse({"detail": "invalid Content-Length"}, 400)(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                await too_large(scope, receive, send)
                return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await too_large(scope, receive, send)
                return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(
    settings: IntakeSettings,
    publisher: Publisher,
    *,
    geography: Geography | None = None,
    follow_bootstrap: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The intake app. ``follow_bootstrap`` starts a follower of the incidents and subscribers
    topics (same prefix as the publisher) for report states and existing subscriptions."""
    intake = Intake(settings, publisher, geography or load_geography(), clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        follower = None
        if follow_bootstrap and settings.watch_incidents:
            from producers.intake.follow import Follower

            follower = Follower(follow_bootstrap, publisher.prefix, intake)
            follower.start()
        if settings.app_api_key is None and settings.callcentre_api_key is None:
            log.warning("no API keys configured: every POST /reports will be refused (401)")
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()

    app = FastAPI(
        title="Kentongan intake",
        version="1",
        description="Citizen reports from the smart-city app, 112 call-centre agents and "
                    "inbound SMS (Kannel). A 201 means the report is on Kafka `reports.raw`.",
        lifespan=lifespan,
    )
    app.state.intake = intake

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                         ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The path only: Kannel's query string carries the sender's phone number.
        log.info("%s %s %s %.1fms", request.method, request.url.path, response.status_code,
                 (time.perf_counter() - started) * 1000)
        return response

    def api_role(x_api_key: Annotated[str | None, Header(description="app or call-centre key")]
                 = None) -> Role:
        role = intake.role_for(x_api_key)
        if role is None:
            raise HTTPException(401, "missing or unknown X-API-Key",
                                headers={"WWW-Authenticate": "X-API-Key"})
        return role

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "description": text} for code, text in {
            401: "no or unknown API key", 403: "channel not allowed for this key",
            409: "report_id reused for a different report", 413: "body too large",
            429: "rate limited; see Retry-After", 503: "Kafka did not acknowledge; retry",
        }.items()
    }

    @app.post("/reports", status_code=201, response_model=ReportAccepted,
              responses={200: {"model": ReportAccepted,
                               "description": "duplicate: this report was already accepted"},
                         **errors})
    async def post_report(
        submission: ReportSubmission,
        request: Request,
        response: Response,
        role: Annotated[Role, Depends(api_role)],
        idempotency_key: Annotated[str | None, Header(
            min_length=1, max_length=IDEMPOTENCY_KEY_MAX,
            description="retries with the same key are accepted once")] = None,
        x_account_token: Annotated[str | None, Header(
            max_length=128,
            description="app reports: hex HMAC-SHA256 of the reporter (account id) with the "
                        "app's signing key; without it the reporter is unverified")] = None,
    ) -> ReportAccepted:
        raw = await request.body()  # the exact bytes; FastAPI cached them when parsing
        status, accepted = await run_in_threadpool(intake.accept, submission, raw, role,
                                                   idempotency_key, x_account_token)
        response.status_code = status
        response.headers["Location"] = accepted.state_url
        return accepted

    @app.get("/reports/{report_id}", response_model=ReportState,
             responses={401: errors[401], 404: {"model": Problem, "description": "unknown id"}})
    def get_report(
        report_id: Annotated[str, Path(pattern=REPORT_ID_PATTERN)],
        role: Annotated[Role, Depends(api_role)],
    ) -> ReportState:
        state = intake.state(report_id)
        if state is None:
            raise HTTPException(404, f"no report {report_id!r} known to this intake")
        return state

    def app_only(role: Annotated[Role, Depends(api_role)]) -> Role:
        if role != "app":
            raise HTTPException(403, "subscriptions are managed with the app's API key")
        return role

    subscriber_errors: dict[int | str, dict[str, Any]] = {
        code: errors[code] for code in (401, 413, 503)}
    subscriber_errors[403] = {"model": Problem, "description": "not the app's API key"}

    @app.post("/subscribers", response_model=Subscription, responses=subscriber_errors)
    async def post_subscriber(
        request: SubscriptionRequest, role: Annotated[Role, Depends(app_only)],
    ) -> Subscription:
        """Subscribe a person (by phone and/or push token) to kelurahan alerts. Idempotent:
        the same body twice is the same subscription; a new body replaces the old one."""
        return await run_in_threadpool(intake.subscribe, request)

    @app.delete("/subscribers/{subscriber_id}", status_code=204, responses=subscriber_errors)
    async def delete_subscriber(
        subscriber_id: Annotated[str, Path(min_length=1, max_length=128,
                                           pattern=r"^[A-Za-z0-9._:-]+$")],
        role: Annotated[Role, Depends(app_only)],
    ) -> Response:
        """Unsubscribe: nothing more is planned for this person from the moment the worker
        reads the tombstone. Idempotent: deleting twice, or an unknown id, is a 204 too."""
        await run_in_threadpool(intake.unsubscribe, subscriber_id)
        return Response(status_code=204)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/sms/inbound", response_class=PlainTextResponse,
             responses={403: {"model": Problem, "description": "wrong or missing secret"}})
    async def sms_inbound(
        sender: Annotated[str, Query(pattern=r"^\+?[0-9]{6,15}$", description="Kannel %p")],
        text: Annotated[str, Query(max_length=2000, description="Kannel %a")] = "",
        keyword: Annotated[str | None, Query(max_length=64, description="Kannel %k")] = None,
        ts: Annotated[str | None, Query(max_length=64, description="Kannel %t")] = None,
        secret: Annotated[str | None, Query(max_length=256)] = None,
        x_kannel_secret: Annotated[str | None, Header(max_length=256)] = None,
    ) -> PlainTextResponse:
        expected = settings.kannel_secret
        given = secret or x_kannel_secret or ""
        if expected is None or not secrets.compare_digest(
                given.encode(), expected.get_secret_value().encode()):
            raise HTTPException(403, "wrong or missing Kannel secret")
        reply = await run_in_threadpool(intake.sms, sender, text, ts)
        return PlainTextResponse(reply)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def run_intake(settings: Settings, intake: IntakeSettings | None = None) -> None:
    """``kentongan intake``: serve on ``intake.host:intake.port`` until SIGINT/SIGTERM."""
    import uvicorn

    intake = intake or settings.intake
    publisher = Publisher(settings.kafka_bootstrap, prefix=settings.topic_prefix,
                          client_id="kentongan-intake")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal into the handler
    # that was there before it: a no-op one lets the finally below flush and exit 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        app = create_app(intake, publisher, follow_bootstrap=settings.kafka_bootstrap)
        uvicorn.run(app, host=intake.host, port=intake.port, access_log=False,
                    log_config=None, server_header=False)
    finally:
        publisher.flush()
        publisher.close()


def openapi_document(settings: IntakeSettings | None = None) -> dict[str, Any]:
    """The OpenAPI document without a broker (for docs and contract tests)."""

    class _NoPublisher:
        prefix = ""

    app = create_app(settings or IntakeSettings(), _NoPublisher(),  # type: ignore[arg-type]
                     geography=load_geography())
    return app.openapi()


__all__ = ["IntakeSettings", "create_app", "openapi_document", "run_intake"]
