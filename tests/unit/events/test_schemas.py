"""The published JSON Schemas in docs/events are what the models generate: the docs cannot drift."""

import json
from pathlib import Path

import pytest

from tests.unit.events.samples import one_of_each
from vmx.events.models import DETAILS, EventDetail
from vmx.events.schemas import DRAFT_2020_12, event_schema, file_name, schema_documents, write_schemas

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events"


def test_the_committed_schemas_are_what_the_models_generate() -> None:
    committed = {path.name: path.read_text(encoding="utf-8") for path in DOCS.glob("*.schema.json")}

    # if this fails after a model change: uv run --frozen python -m vmx.events.schemas
    assert committed == schema_documents()


def test_there_is_one_schema_per_detail_type_and_version() -> None:
    assert sorted(schema_documents()) == [
        "CompletionRecorded.v1.schema.json",
        "ConnectionCreated.v1.schema.json",
        "ConnectionDeleted.v1.schema.json",
        "ConnectionUpdated.v1.schema.json",
        "RateLimitsObserved.v1.schema.json",
    ]


@pytest.mark.parametrize("kind", DETAILS.values(), ids=lambda kind: kind.detail_type)
def test_each_schema_names_itself(kind: type[EventDetail]) -> None:
    schema = event_schema(kind)

    assert schema["$schema"] == DRAFT_2020_12
    assert schema["$id"] == f"urn:vmx-ai-connections:events:{kind.detail_type}:v1"
    assert schema["title"] == f"{kind.detail_type} v1"
    assert schema["description"].startswith(f"The `detail` of a `{kind.detail_type}` event")
    # later v1 publishers may add fields
    assert "additionalProperties" not in json.dumps(schema)


@pytest.mark.parametrize("event", one_of_each(), ids=lambda event: event.detail_type)
def test_a_published_detail_has_every_required_field_and_no_other(event: EventDetail) -> None:
    schema = event_schema(type(event))
    detail = json.loads(event.model_dump_json())

    assert set(schema["required"]) <= set(detail) <= set(schema["properties"])
    assert {"version", "eventId", "occurredAt"} <= set(schema["required"])


def test_the_generator_writes_the_files(tmp_path: Path) -> None:
    written = write_schemas(tmp_path / "events")

    assert {path.name for path in written} == {file_name(kind) for kind in DETAILS.values()}
    assert {path.name: path.read_text(encoding="utf-8") for path in written} == schema_documents()
