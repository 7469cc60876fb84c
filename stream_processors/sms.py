"""How many SMS segments a text costs: GSM 03.38 7-bit (basic table + extension table) or UCS-2.

Pure code. A text is sent GSM-7 when every character is in the basic or the extension table
(an extension character costs two septets: ESC + code), else UCS-2 (UTF-16 code units).
One segment holds 160 septets or 70 units; a concatenated message loses its user-data header
to every part: 153 septets or 67 units each, and an ESC pair or a surrogate pair is never split
across two parts (handsets would show garbage), so parts are filled greedily.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

# 3GPP TS 23.038 basic character set, in code order; the ESC position (0x1B) is a placeholder.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x00ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_BASIC) == 128
GSM7_BASIC = frozenset(_BASIC) - {"\x00"}
# The default extension table (reached through ESC): each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7, PART_GSM7 = 160, 153
SINGLE_UCS2, PART_UCS2 = 70, 67


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class Segments:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def count_segments(text: str) -> Segments:
    """The encoding a gateway picks for ``text`` and the parts it is sent in (≥ 1)."""
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    costs = _costs(text, encoding)
    units = sum(costs)
    single, per_part = ((SINGLE_GSM7, PART_GSM7) if encoding is Encoding.GSM7
                        else (SINGLE_UCS2, PART_UCS2))
    if units <= single:
        return Segments(encoding, units, 1)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:  # an ESC or surrogate pair moves whole to the next part
            parts, used = parts + 1, 0
        used += cost
    return Segments(encoding, units, parts)


def fits(text: str, max_parts: int) -> bool:
    return count_segments(text).parts <= max_parts


_LOOKALIKES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
    "\u2026": "...", "\u00a0": " ", "\u2022": "-", "\t": " ",
})


def to_gsm7(text: str) -> str:
    """``text`` in the GSM-7 alphabet, so an alert never silently drops to 70-character UCS-2
    segments: typographic punctuation becomes ASCII, accents are removed where GSM-7 lacks the
    letter, and anything else becomes ``?``."""
    if is_gsm7(text):
        return text
    out: list[str] = []
    for char in text.translate(_LOOKALIKES):
        if char in GSM7_BASIC or char in GSM7_EXTENSION:
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char)
                       if c in GSM7_BASIC or c in GSM7_EXTENSION)
        out.append(base or "?")
    return "".join(out)
