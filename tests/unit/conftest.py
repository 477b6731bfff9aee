import pytest

from tests.unit.builders import World


@pytest.fixture
def world() -> World:
    return World.create()
