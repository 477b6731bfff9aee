"""Opaque page tokens: they continue only the list, and the partition, they were issued for."""

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmx.errors import InvalidInput
from vmx.pagination import decode_token, encode_token

ATTRIBUTES = frozenset({"pk", "sk", "createdSk"})
PARTITION = ("pk", "WS#ws-acme#ENV#env-production")


def raw_token(value: Any) -> str:
    """A token as a client could forge it: any JSON, base64url-encoded."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def assert_refused(token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_token(token, ATTRIBUTES, PARTITION)
    assert "nextToken" in caught.value.message
    assert [(detail.field, detail.type) for detail in caught.value.details] == [("nextToken", "invalid_token")]


attribute_values = st.text(max_size=40)
keys = st.fixed_dictionaries(
    {
        "pk": st.just({"S": PARTITION[1]}),
        "sk": attribute_values.map(lambda value: {"S": value}),
        "createdSk": attribute_values.map(lambda value: {"S": value}),
    },
)


@settings(max_examples=60, deadline=None)
@given(keys)
def test_a_token_decodes_to_the_key_it_encodes(key: dict[str, dict[str, str]]) -> None:
    token = encode_token(key)

    assert "=" not in token
    assert decode_token(token, ATTRIBUTES, PARTITION) == key


@pytest.mark.parametrize(
    "token",
    ["garbage", "!!!", "é", "a", raw_token(None), raw_token([]), raw_token("pk"), raw_token(1), raw_token({})],
)
def test_garbage_is_refused(token: str) -> None:
    assert_refused(token)


def test_bytes_that_are_not_utf8_are_refused() -> None:
    assert_refused(base64.urlsafe_b64encode(b"\xff\xfe{}").decode())


def test_a_token_for_another_partition_is_refused() -> None:
    # Given a token another tenant's list issued
    other_tenant = encode_token({"pk": {"S": "WS#ws-globex#ENV#env-production"}, "sk": {"S": "CONN#1"}})

    # Then it does not continue this list
    assert_refused(other_tenant)


def test_a_token_without_the_partition_is_refused() -> None:
    assert_refused(encode_token({"sk": {"S": "CONN#1"}}))


def test_extra_attributes_are_refused() -> None:
    assert_refused(encode_token({"pk": {"S": PARTITION[1]}, "gsi1pk": {"S": "WORKSPACES"}}))


@pytest.mark.parametrize(
    "value",
    [{"N": "1"}, {"S": 1}, {"S": None}, "CONN#1", ["CONN#1"], {"S": "CONN#1", "N": "1"}, {}, {"B": "AA=="}],
)
def test_values_that_are_not_single_strings_are_refused(value: Any) -> None:
    assert_refused(raw_token({"pk": {"S": PARTITION[1]}, "sk": value}))


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(st.text(max_size=60), st.binary(max_size=60).map(lambda data: base64.urlsafe_b64encode(data).decode()))
)
def test_any_client_text_decodes_or_is_refused_as_invalid_input(token: str) -> None:
    try:
        key = decode_token(token, ATTRIBUTES, PARTITION)
    except InvalidInput as refused:
        assert refused.details[0].field == "nextToken"
    else:
        assert key["pk"] == {"S": PARTITION[1]}


def test_a_deeply_nested_token_is_refused() -> None:
    token = base64.urlsafe_b64encode(b"[" * 3072).decode()
    assert len(token) <= 4096

    assert_refused(token)
