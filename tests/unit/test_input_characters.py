"""Which characters secrets, names and descriptions may hold, checked on the validators themselves, for every
provider's every secret field; and that no refusal's text quotes the secret."""

import unicodedata
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from vmx.connections.config_changes import merged_config, new_config
from vmx.errors import InvalidInput
from vmx.fields import Description, DisplayName, ModelId
from vmx.providers.catalog import PROVIDERS, Provider

# A valid configuration of each provider without its secrets, and one value for each secret field.
_BASES = {"region": "us-east-1"}
_VALID_SECRET = "AKIAIOSFODNN7EXAMPLE"

SECRET_FIELDS = [(provider, field) for provider in PROVIDERS.values() for field in sorted(provider.secret_fields)]
REFUSED_IN_SECRETS = [
    *(chr(code) for code in range(0x20)),  # C0 controls, CR LF TAB NUL among them
    " ",
    "\x7f",
    *(chr(code) for code in range(0x80, 0xA0)),  # C1 controls, U+0085 among them
    "\xa0",
    "é",
    "\u2028",
    "\u2029",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\ud800",
    "😀",
]


def valid_config(provider: Provider) -> dict[str, str]:
    if "apiKey" in provider.secret_fields:
        return {"apiKey": _VALID_SECRET}
    return {**_BASES, "accessKeyId": _VALID_SECRET, "secretAccessKey": _VALID_SECRET}


def config_with(provider: Provider, field: str, value: str) -> dict[str, str]:
    return {**valid_config(provider), field: value}


def ids(pairs: list[tuple[Provider, str]]) -> list[str]:
    return [f"{provider.id}.{field}" for provider, field in pairs]


@pytest.mark.parametrize(("provider", "field"), SECRET_FIELDS, ids=ids(SECRET_FIELDS))
@pytest.mark.parametrize("char", REFUSED_IN_SECRETS, ids=[f"U+{ord(c):04X}" for c in REFUSED_IN_SECRETS])
def test_a_secret_with_anything_but_printable_ascii_is_refused_without_being_quoted(
    provider: Provider, field: str, char: str
) -> None:
    secret = "sk-CANARY" + uuid.uuid4().hex

    for value in (secret + char, char + secret, secret[:6] + char + secret[6:]):
        with pytest.raises(ValidationError) as raised:
            provider.config_model.model_validate(config_with(provider, field, value))
        with pytest.raises(InvalidInput) as refused:
            new_config(provider, config_with(provider, field, value))

        [error] = raised.value.errors()
        assert error["loc"] == (field,)
        # the text of the error hides the input (hide_input_in_errors); its structured form leaves it out when
        # asked to, as config_changes asks
        rendered = " ".join([str(raised.value), repr(raised.value), raised.value.json(include_input=False)])
        assert secret not in rendered
        assert refused.value.details[0].field == f"config.{field}"
        assert refused.value.message.startswith(f"config.{field}: ")
        assert secret not in refused.value.message + repr(refused.value.details) + str(refused.value)


@pytest.mark.parametrize(("provider", "field"), SECRET_FIELDS, ids=ids(SECRET_FIELDS))
def test_a_secret_patched_in_is_checked_as_one_created(provider: Provider, field: str) -> None:
    secret = "sk-CANARY" + uuid.uuid4().hex
    stored = frozenset(valid_config(provider)) & provider.secret_fields
    settings = {name: value for name, value in valid_config(provider).items() if name not in provider.secret_fields}

    with pytest.raises(InvalidInput) as refused:
        merged_config(provider, settings, stored | {field}, {field: secret + "\n"})

    assert refused.value.details[0].field == f"config.{field}"
    assert secret not in str(refused.value) + repr(refused.value.details)


@given(secret=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200))
def test_every_printable_ascii_secret_without_spaces_is_accepted(secret: str) -> None:
    for provider, field in SECRET_FIELDS:
        provider.config_model.model_validate(config_with(provider, field, secret))


@given(char=st.characters(codec="utf-8", exclude_characters="\n\t"))
def test_names_and_descriptions_refuse_exactly_the_characters_that_break_a_line_or_reorder_text(char: str) -> None:
    category = unicodedata.category(char)
    breaks_a_line = category in ("Cc", "Zl", "Zp")
    bidi_control = char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

    assert accepts(DisplayName, f"a{char}b") == (not category.startswith("C") and not breaks_a_line)
    assert accepts(ModelId, f"a{char}b") == (not category.startswith("C") and not breaks_a_line)
    assert accepts(Description, f"a{char}b") == (not breaks_a_line and not bidi_control and category != "Cs")


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\u202e", "\u2066", "\u200b", "\ud800", "\n", "\t"])
def test_a_name_refuses_separators_controls_and_format_characters(char: str) -> None:
    assert not accepts(DisplayName, f"prod{char}uction")


def test_a_description_keeps_newlines_tabs_and_the_marks_of_right_to_left_text() -> None:
    assert accepts(Description, "line one\n\tline two \u200f(عربي)\u200e \u200d")
    assert not accepts(Description, "\ud800")


def accepts(kind: Any, value: str) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True
