"""Connection names and allowed-model lists."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from vmx.connections.models import ConnectionCreate, ConnectionPatch
from vmx.fields import AllowedModels, ConnectionName

NAME: TypeAdapter[str] = TypeAdapter(ConnectionName)
ALLOWED_MODELS: TypeAdapter[list[str]] = TypeAdapter(AllowedModels)

# Printable text without '/', trimmed: what a name may be.
valid_names = st.text(
    alphabet=st.characters(exclude_categories=["C"], exclude_characters="/"), min_size=1, max_size=128
).filter(lambda name: name == name.strip())


@pytest.mark.parametrize("name", ["OpenAI Production", "a", "x" * 128, "Prod (eu) #2", "Prod éü 日本"])
def test_names_are_accepted_as_given(name: str) -> None:
    assert NAME.validate_python(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("openai/prod", "must not contain '/'"),
        (" leading", "must not start or end with whitespace"),
        ("trailing ", "must not start or end with whitespace"),
        ("tab\tinside", "must not contain control, format or line-separator characters"),
        ("line\nbreak", "must not contain control, format or line-separator characters"),
        ("nul\x00", "must not contain control, format or line-separator characters"),
        ("del\x7f", "must not contain control, format or line-separator characters"),
        ("line\u2028separator", "must not contain control, format or line-separator characters"),
        ("paragraph\u2029separator", "must not contain control, format or line-separator characters"),
        ("next\u0085line", "must not contain control, format or line-separator characters"),
        ("bidi\u202eoverride", "must not contain control, format or line-separator characters"),
        ("zero\u200bwidth", "must not contain control, format or line-separator characters"),
        ("", "at least 1 character"),
        ("x" * 129, "at most 128 characters"),
    ],
)
def test_names_that_would_break_model_addressing_or_display_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        NAME.validate_python(name)


def test_a_name_must_be_a_string() -> None:
    with pytest.raises(ValidationError):
        NAME.validate_python(123)


@settings(max_examples=60, deadline=None)
@given(valid_names)
def test_any_trimmed_printable_name_without_a_slash_is_accepted(name: str) -> None:
    assert NAME.validate_python(name) == name


@settings(max_examples=40, deadline=None)
@given(valid_names.filter(lambda name: len(name) < 128), st.data())
def test_a_slash_anywhere_in_a_name_is_refused(name: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=1, max_value=len(name) - 1)) if len(name) > 1 else 1

    with pytest.raises(ValidationError, match="must not contain '/'"):
        NAME.validate_python(name[:position] + "/" + name[position:])


def test_allowed_models_keeps_the_list_as_given() -> None:
    assert ALLOWED_MODELS.validate_python(["gpt-4o", "gpt-4o-mini", "GPT-4o"]) == ["gpt-4o", "gpt-4o-mini", "GPT-4o"]


def test_an_empty_allowed_models_list_is_refused_pointing_at_null() -> None:
    with pytest.raises(ValidationError) as caught:
        ALLOWED_MODELS.validate_python([])

    assert "null" in caught.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["gpt-4o", "gpt-4o"], "lists model 'gpt-4o' more than once"),
        (["gpt-4o", "   "], "must not be blank"),
        ([""], "at least 1 character"),
        ([" gpt-4o"], "must not start or end with whitespace"),
        (["gpt-4o\n"], "must not start or end with whitespace"),
        (["m" * 257], "at most 256 characters"),
        ([4], "valid string"),
    ],
)
def test_allowed_models_are_distinct_trimmed_ids(models: list[object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ALLOWED_MODELS.validate_python(models)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.from_regex(r"[a-z0-9][a-z0-9.:/-]{0,40}", fullmatch=True), min_size=1, max_size=20, unique=True))
def test_distinct_model_ids_are_accepted_and_a_repeat_is_not(models: list[str]) -> None:
    assert ALLOWED_MODELS.validate_python(models) == models
    with pytest.raises(ValidationError, match="more than once"):
        ALLOWED_MODELS.validate_python([*models, models[0]])


def test_null_allowed_models_means_every_model() -> None:
    request = ConnectionCreate.model_validate({"name": "c", "provider": "openai", "config": {}, "allowedModels": None})

    assert request.allowed_models is None


def test_the_request_models_apply_the_field_rules() -> None:
    with pytest.raises(ValidationError) as on_create:
        ConnectionCreate.model_validate({"name": "a/b", "provider": "openai", "config": {}, "allowedModels": []})
    with pytest.raises(ValidationError) as on_patch:
        ConnectionPatch.model_validate({"name": " a", "allowedModels": ["x", "x"]})

    assert {error["loc"] for error in on_create.value.errors()} == {("name",), ("allowedModels",)}
    assert {error["loc"] for error in on_patch.value.errors()} == {("name",), ("allowedModels",)}
