"""The events' JSON Schemas, generated from the models. `python -m vmx.events.schemas [DIRECTORY]` writes them
(to `docs/events` by default); a test fails when the committed copies differ from what the models generate.
"""

import json
import sys
from pathlib import Path
from typing import Any

from vmx.events.models import DETAILS, EVENT_SOURCE, EventDetail

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def schema_version(kind: type[EventDetail]) -> str:
    version: str = kind.model_fields["version"].default
    return version


def file_name(kind: type[EventDetail]) -> str:
    return f"{kind.detail_type}.v{schema_version(kind)}.schema.json"


def event_schema(kind: type[EventDetail]) -> dict[str, Any]:
    # serialization mode: the schema of what is published, in which every defaulted field is present
    generated = kind.model_json_schema(by_alias=True, mode="serialization")
    version = schema_version(kind)
    description = generated.pop("description")
    generated.pop("title")
    return {
        "$schema": DRAFT_2020_12,
        "$id": f"urn:vmx-ai-connections:events:{kind.detail_type}:v{version}",
        "title": f"{kind.detail_type} v{version}",
        "description": f"The `detail` of a `{kind.detail_type}` event from source `{EVENT_SOURCE}`. {description}",
        **generated,
    }


def schema_documents() -> dict[str, str]:
    """File name to contents, for every event."""
    return {file_name(kind): json.dumps(event_schema(kind), indent=2) + "\n" for kind in DETAILS.values()}


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_documents().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")):
        print(path)
