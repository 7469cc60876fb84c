"""Phone numbers: normalised to E.164 (region ID), and hashed wherever they could leak.

A hash stands in for the number in logs, metric labels, ``Signal.reporter_ref`` and subscriber
ids, so one person is recognisable across records without the number being written anywhere.
"""

from __future__ import annotations

import hashlib
import re

import phonenumbers

DEFAULT_REGION = "ID"
# Digits with the separators people type ("0812-3456 7890", "+62 (370) 123456"); an account id
# such as "app-user-17" or "budi@example" is not phone-like and is left as it is.
_PHONE_LIKE = re.compile(r"^\+?[0-9][0-9 ().\-/]{4,24}$")


class InvalidPhone(ValueError):
    """Looks like a phone number but is not a valid one."""


def looks_like_phone(value: str) -> bool:
    return bool(_PHONE_LIKE.match(value.strip()))


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """``0812 3456 7890`` -> ``+6281234567890``; raise :class:`InvalidPhone` otherwise."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_reporter(raw: str) -> str:
    """A phone-like reporter becomes E.164; an app account id is only trimmed."""
    value = raw.strip()
    return to_e164(value) if looks_like_phone(value) else value


def identity_hash(normalized: str) -> str:
    """Stable pseudonym for a normalized phone or account id (16 hex chars)."""
    return hashlib.sha256(normalized.encode()).hexdigest()[:16]


def safe_reporter_ref(raw: str) -> str:
    """Pseudonym of any reporter string, never raising: invalid phones hash as typed."""
    try:
        return identity_hash(normalize_reporter(raw))
    except InvalidPhone:
        return identity_hash(raw.strip())
