"""Untrusted XML from BMKG feeds: parsed with no DTD, entity or external reference, ever."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)

_FORBIDDEN = {
    DTDForbidden: "DTD (<!DOCTYPE ...>)",
    EntitiesForbidden: "entity declaration",
    ExternalReferenceForbidden: "external reference",
}


def shorten(text: str, limit: int = 80) -> str:
    """Keep error messages readable when the input is hostile or huge."""
    return text if len(text) <= limit else text[:limit] + "..."


def parse_untrusted(data: bytes, error: type[ValueError]) -> Element:
    """The document's root; ``error`` (the feed's one documented rejection) on anything else:
    an XML bomb, an external entity, malformed or truncated XML, an unknown encoding."""
    try:
        root: Element = DefusedET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        what = _FORBIDDEN.get(type(exc), type(exc).__name__)
        raise error(f"forbidden XML construct: {what}") from None
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise error(f"malformed XML: {shorten(str(exc))}") from None
    return root
