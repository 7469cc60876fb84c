"""BMKG nowcast RSS index (``/alerts/nowcast/id`` and ``/en``): bytes in, :class:`RssItem` out.

Pure: no network, no Kafka. :func:`parse_rss` raises :class:`RssError` and nothing else for
anything it will not accept. The index only points at CAP files: it has no expiry and its text
duplicates the CAP ``<description>``, so only the pointers are kept.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from xml.etree.ElementTree import Element

from pydantic import AwareDatetime, BaseModel, ConfigDict

from producers.bmkg.safexml import parse_untrusted, shorten

# BMKG's "kode_detail_cap" in a CAP link: C + 2-letter province + YYYYMMDD + 3 digits.
_FILE_CODE_RE = re.compile(r"/(C[A-Z]{2}\d{11})_alert\.xml$")


class RssError(ValueError):
    """The document is not a nowcast RSS index Kentongan can use; the message says why."""


class RssItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    link: str
    guid: str
    pub_date: AwareDatetime  # the CAP <sent>, with the province's offset (+0800 for WITA)
    title: str = ""
    file_code: str | None = None
    language: str | None = None  # "id" / "en", from /alerts/nowcast/{lang}/ in the link

    def cap_file_name(self) -> str | None:
        return f"{self.file_code}_alert.xml" if self.file_code else None


def parse_rss(data: bytes) -> list[RssItem]:
    """The items of one index, in document order. Items without a link are skipped (nothing to
    fetch); an item whose ``pubDate`` is missing or not RFC 1123 with a zone is an error."""
    root = parse_untrusted(data, RssError)
    if root.tag != "rss":
        raise RssError(f"not RSS: root element {shorten(root.tag)}")
    channel = root.find("channel")
    if channel is None:
        raise RssError("missing <channel>")
    items: list[RssItem] = []
    for index, item in enumerate(channel.findall("item")):
        link = _text(item, "link")
        if not link:
            continue
        pub_text = _text(item, "pubDate")
        if not pub_text:
            raise RssError(f"item {index}: missing <pubDate>")
        try:
            published = parsedate_to_datetime(pub_text)
        except (TypeError, ValueError, IndexError, OverflowError):
            raise RssError(f"item {index}: invalid <pubDate> {shorten(pub_text)!r}") from None
        if published.tzinfo is None or published.utcoffset() is None:
            raise RssError(f"item {index}: <pubDate> {shorten(pub_text)!r} has no zone")
        code = _FILE_CODE_RE.search(link)
        language = re.search(r"/nowcast/([a-z]{2})/", link)
        items.append(
            RssItem(
                link=link,
                guid=_text(item, "guid") or link,
                pub_date=published,
                title=_text(item, "title"),
                file_code=code.group(1) if code else None,
                language=language.group(1) if language else None,
            )
        )
    return items


def _text(parent: Element, tag: str) -> str:
    element = parent.find(tag)
    return "" if element is None else (element.text or "").strip()

