"""Publish a JSON-lines file onto a catalogue topic (recorded reports, subscriber lists)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from producers.publisher import Publisher
from schemas.topics import TopicSpec


def record_key(line: str, spec: TopicSpec) -> str:
    """The topic's key field of one JSON line; ValueError names what is wrong."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict) or not isinstance(value.get(spec.key), str):
        raise ValueError(f"no string field {spec.key!r}")
    if spec.value is not None:
        spec.value.model_validate(value)
    return str(value[spec.key])


def publish_jsonl(path: Path, spec: TopicSpec, publisher: Publisher) -> int:
    """Each valid line goes on ``spec`` exactly as written; each invalid one to the dead letters."""
    published = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            key = record_key(line, spec)
        except (ValueError, ValidationError) as exc:
            publisher.dead_letter(
                source_topic=spec.full_name(publisher.prefix), key=f"{path.name}:{number}",
                value=line, stage=f"produce-{spec.name}", reason=str(exc),
            )
            continue
        publisher.send(spec, key, line.encode())
        published += 1
    publisher.flush()
    return published
