"""Export the JSON Schema of every value model in the topic catalogue."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.reports import CitizenReport, NormalizedReport, ReportSubmission
from schemas.topics import CATALOGUE


def export_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    extra: set[type[BaseModel]] = {CitizenReport, ReportSubmission, NormalizedReport}
    models = {spec.value for spec in CATALOGUE if spec.value is not None} | extra
    written = []
    for model in sorted(models, key=lambda m: m.__name__):
        path = directory / f"{model.__name__}.v1.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
