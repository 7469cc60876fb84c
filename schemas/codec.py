"""Bytes on the wire <-> models. JSON, UTF-8; the only (de)serialisation every stage uses."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def decode(model: type[M], data: bytes | str | None) -> M:
    """Raise ``pydantic.ValidationError`` (a ValueError) on anything not a valid ``model``."""
    if data is None:
        raise ValueError("empty record (tombstone or null value)")
    return model.model_validate_json(data)


def encode_key(key: str | None) -> bytes | None:
    return None if key is None else key.encode()


def text_of(data: bytes | str | None) -> str:
    """For dead letters: the original record as text, never failing."""
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")
