"""Inbound SMS from Kannel's sms-service: commands and reports. Pure: text in, decisions out.

``DAFTAR <kelurahan>`` subscribes the sender to that kelurahan's alerts (added to the ones they
have), ``BERHENTI`` unsubscribes them, ``BANTUAN``/``INFO`` answers with help, and any other
text is a citizen report. Every answer carries a reply SMS, Bahasa Indonesia first, English
second, kept within one 160-character GSM message so Kannel never has to split it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from producers.reports import fold, locate_fields
from schemas.events import Subscriber
from schemas.geography import Geography

SUBSCRIBE_WORDS = {"daftar", "reg", "langganan", "subscribe"}
STOP_WORDS = {"berhenti", "stop", "unreg", "batal"}
HELP_WORDS = {"bantuan", "info", "help"}
SMS_MAX = 160

HELP = ("Kirim: DAFTAR <kelurahan> / BERHENTI / laporan, mis. BANJIR AMPENAN SELATAN. "
        "/ Send: DAFTAR <kelurahan>, BERHENTI, or a report.")
RATE_LIMITED = ("Terlalu banyak pesan, coba lagi nanti. / Too many messages, try again later.")


@dataclass(frozen=True)
class SmsDecision:
    reply: str
    kind: str = "help"  # subscribe / unsubscribe / report / help / unknown_place (metrics)
    report_id: str | None = None
    report_body: bytes | None = None  # what goes on reports.raw
    subscriber: Subscriber | None = None


def subscriber_id_for(phone_e164: str) -> str:
    """Subscriber id = hash of the E.164 number: stable, and no number in the Kafka key."""
    return "sms-" + hashlib.sha256(phone_e164.encode()).hexdigest()[:24]


def sms_report_id(phone_e164: str, text: str, stamp: str) -> str:
    """Deterministic, so a message Kannel delivers twice is the same report."""
    return "sms-" + hashlib.sha256(f"{phone_e164}\n{stamp}\n{text}".encode()).hexdigest()[:16]


def decide(
    *,
    phone_e164: str,
    text: str,
    received_at: datetime,
    stamp: str,
    geography: Geography,
    known_areas: list[str],
) -> SmsDecision:
    words = fold(text).split()
    command = words[0] if words else ""
    sid = subscriber_id_for(phone_e164)
    if command in SUBSCRIBE_WORDS:
        rest = " ".join(text.split()[1:])
        where = locate_fields(geography, lat=None, lon=None, texts=[rest])
        if where.area_code is None:
            if where.kecamatan_code:
                example = geography.kelurahan_in_kecamatan(where.kecamatan_code)[0].name.upper()
                return SmsDecision(f"Sebutkan kelurahan, mis. DAFTAR {example} "
                                   f"/ Name a kelurahan, e.g. DAFTAR {example}", "unknown_place")
            return SmsDecision("Kelurahan tidak dikenal. Contoh: DAFTAR AMPENAN SELATAN "
                               "/ Unknown kelurahan. Example: DAFTAR AMPENAN SELATAN",
                               "unknown_place")
        area = geography.kelurahan[where.area_code]
        areas = sorted({*known_areas, area.code})
        reply = (f"Terdaftar: peringatan {area.name}. Ketik BERHENTI utk berhenti. "
                 f"/ Subscribed: {area.name} alerts. Text BERHENTI to stop.")
        return SmsDecision(reply[:SMS_MAX], "subscribe", subscriber=Subscriber(
            subscriber_id=sid, phone=phone_e164, areas=areas, active=True))
    if command in STOP_WORDS:
        return SmsDecision(
            "Anda tidak akan menerima peringatan lagi. / You will no longer receive alerts.",
            "unsubscribe",
            subscriber=Subscriber(subscriber_id=sid, phone=phone_e164, areas=known_areas,
                                  active=False))
    if command in HELP_WORDS or not words:
        return SmsDecision(HELP)
    report_id = sms_report_id(phone_e164, text, stamp)
    body = json.dumps({
        "report_id": report_id, "reporter": phone_e164, "channel": "sms", "text": text,
        "reported_at": received_at.isoformat(),
    }, ensure_ascii=False).encode()
    return SmsDecision(f"Laporan {report_id} diterima, terima kasih. "
                       f"/ Report {report_id} received, thank you.", "report",
                       report_id=report_id, report_body=body)
