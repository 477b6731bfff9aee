"""Route matching as API Gateway does it, from `infra/system.py` and from small route tables."""

import re

import pytest

from infra import system
from infra.system import Route
from local_stack.gateway import RouteMatch, Router

ROUTES = (
    Route("GET", "/items", "f"),
    Route("POST", "/items", "f"),
    Route("GET", "/items/{itemId}", "f"),
    Route("DELETE", "/items/{itemId}", "f"),
    Route("GET", "/items/special", "g"),
    Route("GET", "/items/{itemId}/parts/{partId}", "f"),
)


def test_every_system_route_resolves_to_itself() -> None:
    router = Router(system.ROUTES)
    for route in system.ROUTES:
        path = re.sub(r"\{(\w+)\}", lambda m: f"{m.group(1)}-value", route.path)
        resolved = router.resolve(route.method, path)
        assert isinstance(resolved, RouteMatch), route
        assert resolved.route == route
        assert set(resolved.path_parameters) == set(re.findall(r"\{(\w+)\}", route.path))


def test_parameters_are_captured_and_url_decoded() -> None:
    resolved = Router(ROUTES).resolve("GET", "/items/a%20b%2Fc/parts/%E2%9C%93")
    assert resolved == RouteMatch(ROUTES[5], {"itemId": "a b/c", "partId": "✓"})


def test_a_literal_segment_beats_a_parameter() -> None:
    resolved = Router(ROUTES).resolve("GET", "/items/special")
    assert isinstance(resolved, RouteMatch)
    assert resolved.route.function == "g"
    assert resolved.path_parameters == {}


@pytest.mark.parametrize("path", ["/nowhere", "/items/", "/items//parts/x", "/items/1/parts", "items", "/"])
def test_unknown_paths_match_nothing(path: str) -> None:
    assert Router(ROUTES).resolve("GET", path) is None


@pytest.mark.parametrize(("method", "path"), [("PATCH", "/items/1"), ("HEAD", "/items"), ("POST", "/items/special")])
def test_a_known_path_with_a_method_no_route_defines_matches_nothing(method: str, path: str) -> None:
    """API Gateway answers it as it answers an unknown path."""
    assert Router(ROUTES).resolve(method, path) is None
