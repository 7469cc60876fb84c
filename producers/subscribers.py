"""Subscribers from outside the SMS keywords: a CSV import, a test population, the app's API.
Pure code: text in, ``Subscriber`` records (or clear per-row errors) out.

CSV columns: ``phone,kelurahan_code,language,channels[,push_token]``; ``channels`` is ``sms``,
``push`` or ``sms+push``, ``language`` ``id`` or ``en`` (empty: ``id``). A person (phone) on
several rows is one subscriber of several kelurahan. The subscriber id is the same hash of the
E.164 number the SMS keywords use, so an import and a later ``DAFTAR`` are the same person.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.resources import files

from pydantic import BaseModel, Field, ValidationError, model_validator

from producers.intake.kannel import subscriber_id_for
from producers.intake.phones import InvalidPhone, to_e164
from schemas.events import Channel, Subscriber
from schemas.geography import Geography

CSV_COLUMNS = ("phone", "kelurahan_code", "language", "channels")
OPTIONAL_COLUMNS = ("push_token",)
CHANNEL_WORDS: dict[str, list[Channel]] = {
    "sms": [Channel.SMS], "push": [Channel.PUSH], "sms+push": [Channel.SMS, Channel.PUSH],
}


@dataclass(frozen=True)
class BadRow:
    line: int  # 1-based line of the file (the header is line 1)
    reason: str  # never quotes the phone number
    text: str  # the row as written, for the dead-letter record (not for logs)


@dataclass
class ImportResult:
    subscribers: list[Subscriber] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    rows: int = 0


def push_subscriber_id(token: str) -> str:
    return "push-" + hashlib.sha256(token.encode()).hexdigest()[:24]


def parse_subscriber_csv(text: str, geography: Geography) -> ImportResult:
    """Every good row, merged per person; every bad row with its line number and why."""
    result = ImportResult()
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return result
    columns = [name.strip().lower() for name in header]
    missing = [name for name in CSV_COLUMNS if name not in columns]
    if missing:
        raise ValueError(f"line 1: the header lacks {', '.join(missing)} "
                         f"(expected {','.join(CSV_COLUMNS)}[,push_token])")
    people: dict[str, dict[str, object]] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        result.rows += 1
        written = ",".join(row)
        if len(row) > len(columns):
            result.bad.append(BadRow(line, f"{len(row)} fields, the header has {len(columns)}",
                                     written))
            continue
        cells = dict(zip(columns, (cell.strip() for cell in row), strict=False))
        try:
            person = _person(cells, geography)
        except ValueError as exc:
            result.bad.append(BadRow(line, str(exc), written))
            continue
        sid = str(person["subscriber_id"])
        known = people.get(sid)
        if known is None:
            people[sid] = person
            continue
        if (known["language"], known["channels"], known["push_token"]) != (
                person["language"], person["channels"], person["push_token"]):
            result.bad.append(BadRow(line, "the same phone appears earlier with another "
                                           "language, channels or push_token", written))
            continue
        areas = known["areas"]
        assert isinstance(areas, list)
        areas.extend(a for a in person["areas"] if a not in areas)  # type: ignore[attr-defined]
    result.subscribers = [Subscriber.model_validate(p) for p in people.values()]
    return result


def _person(cells: Mapping[str, str], geography: Geography) -> dict[str, object]:
    try:
        phone = to_e164(cells.get("phone", ""))
    except InvalidPhone as exc:
        raise ValueError(f"phone: {exc}") from None
    area = cells.get("kelurahan_code", "")
    if area not in geography.kelurahan:
        raise ValueError(f"kelurahan_code {area[:20]!r} is not one of Mataram's 50 kelurahan")
    language = cells.get("language", "").lower() or "id"
    if language not in ("id", "en"):
        raise ValueError(f"language {language[:10]!r}: use id or en")
    word = cells.get("channels", "").lower().replace(" ", "") or "sms"
    channels = CHANNEL_WORDS.get(word)
    if channels is None:
        raise ValueError(f"channels {word[:20]!r}: use sms, push or sms+push")
    token = cells.get("push_token", "") or None
    if Channel.PUSH in channels and token is None:
        raise ValueError("push needs a push_token column with the app's token")
    return {"subscriber_id": subscriber_id_for(phone), "phone": phone, "push_token": token,
            "areas": [area], "channels": channels, "language": language}


class SubscriptionRequest(BaseModel):
    """``POST /subscribers``: who, where, how. The answer names the subscriber id to delete."""

    phone: str | None = Field(default=None, max_length=32,
                              description="for SMS; any usual form, stored as E.164")
    push_token: str | None = Field(default=None, min_length=1, max_length=4096,
                                   description="for push: the app's FCM or Web Push token")
    areas: list[str] = Field(min_length=1, max_length=50, description="kelurahan codes")
    language: str = Field(default="id", pattern="^(id|en)$")
    channels: list[Channel] = Field(default_factory=lambda: [Channel.SMS], min_length=1)

    @model_validator(mode="after")
    def _reachable(self) -> SubscriptionRequest:
        if Channel.CALLCENTRE in self.channels:
            raise ValueError("channels are sms and push")
        if Channel.SMS in self.channels and not self.phone:
            raise ValueError("sms needs a phone")
        if Channel.PUSH in self.channels and not self.push_token:
            raise ValueError("push needs a push_token")
        return self


def subscriber_from_request(request: SubscriptionRequest, geography: Geography) -> Subscriber:
    """ValueError naming the field when the phone or a kelurahan is not valid."""
    unknown = [a for a in request.areas if a not in geography.kelurahan]
    if unknown:
        raise ValueError(f"areas: not Mataram kelurahan codes: {', '.join(unknown)[:200]}")
    phone = None
    if request.phone:
        try:
            phone = to_e164(request.phone)
        except InvalidPhone as exc:
            raise ValueError(f"phone: {exc}") from None
    # One person, one id: by phone when there is one (as DAFTAR), else by the push token.
    assert phone is not None or request.push_token is not None
    sid = subscriber_id_for(phone) if phone else push_subscriber_id(request.push_token or "")
    try:
        return Subscriber(subscriber_id=sid, phone=phone, push_token=request.push_token,
                          areas=sorted(set(request.areas)),
                          channels=list(dict.fromkeys(request.channels)),
                          language="en" if request.language == "en" else "id")
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


# --- test populations ---------------------------------------------------------------------

# ASSUMPTIONS for generated populations (no source gives these for Mataram): the kecamatan
# shares are BPS SP2010's; inside a kecamatan, people are spread evenly over its kelurahan;
# 5 % read English; 80 % take SMS only, 15 % SMS and push, 5 % push only.
ASSUMPTIONS = ("kecamatan shares from BPS SP2010 (population_sp2010_kecamatan.csv); spread "
               "evenly over each kecamatan's kelurahan; 5% English; channels 80% sms, "
               "15% sms+push, 5% push")
ENGLISH_SHARE = 0.05
CHANNEL_SHARES = (("sms", 0.80), ("sms+push", 0.15), ("push", 0.05))
# Indonesian mobile prefixes (Telkomsel, Indosat, XL, Tri, Smartfren), national form.
MOBILE_PREFIXES = ("0811", "0812", "0813", "0821", "0822", "0823", "0852", "0853", "0814",
                   "0815", "0816", "0855", "0856", "0857", "0858", "0817", "0818", "0819",
                   "0859", "0877", "0878", "0895", "0896", "0897", "0898", "0899", "0881",
                   "0882", "0883", "0887", "0888")


def kecamatan_shares() -> dict[str, int]:
    """Kemendagri kecamatan code -> SP2010 population, for Mataram's six kecamatan."""
    path = files("schemas") / "data" / "mataram" / "population_sp2010_kecamatan.csv"
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return {row["kemendagri_code"]: int(row["total"]) for row in rows
            if row["kemendagri_code"].startswith("52.71.")}


def _apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Largest remainders: integer counts in proportion to ``weights`` that sum to ``total``."""
    whole = sum(weights.values())
    exact = {key: total * weight / whole for key, weight in weights.items()}
    counts = {key: int(value) for key, value in exact.items()}
    left = total - sum(counts.values())
    for key in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[:left]:
        counts[key] += 1
    return counts


def kelurahan_counts(total: int, geography: Geography) -> dict[str, int]:
    """How many of ``total`` people live in each kelurahan, under ``ASSUMPTIONS``."""
    by_kecamatan = _apportion(total, {k: float(v) for k, v in kecamatan_shares().items()})
    counts: dict[str, int] = {}
    for kecamatan, people in sorted(by_kecamatan.items()):
        areas = [a.code for a in geography.kelurahan_in_kecamatan(kecamatan)]
        counts.update(_apportion(people, dict.fromkeys(areas, 1.0)))
    return counts


def generate_rows(total: int, geography: Geography, seed: int = 0) -> Iterator[list[str]]:
    """``total`` CSV rows (no header), distinct valid phones, deterministic for a seed."""
    rng = random.Random(seed)
    counts = kelurahan_counts(total, geography)
    areas = [area for area, n in sorted(counts.items()) for _ in range(n)]
    rng.shuffle(areas)
    # 8 digits after a 4-digit prefix: 12-digit national numbers, valid for every operator;
    # drawn without replacement, so every phone is distinct.
    numbers = rng.sample(range(len(MOBILE_PREFIXES) * 10**8), total)
    words = [word for word, _ in CHANNEL_SHARES]
    shares = [share for _, share in CHANNEL_SHARES]
    for area, number in zip(areas, numbers, strict=True):
        prefix, suffix = divmod(number, 10**8)
        phone = f"+62{MOBILE_PREFIXES[prefix][1:]}{suffix:08d}"
        channels = rng.choices(words, weights=shares)[0]
        language = "en" if rng.random() < ENGLISH_SHARE else "id"
        token = f"fcm-{rng.getrandbits(128):032x}" if "push" in channels else ""
        yield [phone, area, language, channels, token]


def generate_csv(total: int, geography: Geography, seed: int = 0) -> Iterator[str]:
    """The generated population as CSV lines, header first."""
    yield ",".join((*CSV_COLUMNS, *OPTIONAL_COLUMNS)) + "\n"
    for row in generate_rows(total, geography, seed):
        yield ",".join(row) + "\n"
