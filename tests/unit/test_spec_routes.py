"""The spec's routes (infra/system.py ROUTES) are exactly the routes each function's handler resolves, and its
settings class is the one the handler reads. API Gateway and the local stack route by the spec, the handler by its
decorators: a route in one and not the other would be a 404 or a 403 that no other tier may catch."""

import re
from types import ModuleType

import pytest
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

from infra.handlers import imported_handler_module
from infra.system import FUNCTIONS, ROUTES, Function


def handler_module(function: Function) -> ModuleType:
    """The handler, under a module name of this test's own: other tiers keep their own copies in sys.modules."""
    return imported_handler_module(function, f"spec_test_handler_{function.name}")


def handler_routes(function: Function) -> set[tuple[str, str]]:
    """(method, path) of every route of the resolvers in the function's handler, in API Gateway's `{param}` form."""
    resolvers = [value for value in vars(handler_module(function)).values() if isinstance(value, ApiGatewayResolver)]
    return {
        (route.method, re.sub(r"<(\w+)>", r"{\1}", route.path))
        for resolver in resolvers
        for route in (*resolver._static_routes, *resolver._dynamic_routes)
    }


def spec_routes(function: Function) -> set[tuple[str, str]]:
    return {(route.method, route.path) for route in ROUTES if route.function == function.name}


def test_every_route_names_a_function_of_the_spec() -> None:
    assert {route.function for route in ROUTES} <= {function.name for function in FUNCTIONS}


def test_no_route_is_declared_twice() -> None:
    assert len({(route.method, route.path) for route in ROUTES}) == len(ROUTES)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda function: function.name)
def test_the_handler_resolves_exactly_its_routes_in_the_spec(function: Function) -> None:
    assert handler_routes(function) == spec_routes(function)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda function: function.name)
def test_the_handler_reads_the_settings_class_its_spec_names(function: Function) -> None:
    assert function.settings in vars(handler_module(function)).values()
