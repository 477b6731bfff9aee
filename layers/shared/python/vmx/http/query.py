"""A query parameter a route does not take is refused, not ignored: `?limt=5` would otherwise list 20 quietly."""

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from vmx.errors import ErrorDetail, InvalidInput

# Names are quoted only this long: a name is the caller's text, and may be long or odd.
_NAME_CHARS = 64


def refuse_unknown_query_parameters(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[object]:
    """A middleware: runs once the route is known (`_route` is Powertools' own context key for it)."""
    taken = {param.alias for param in app.context["_route"].dependant.query_params}
    sent = {*(app.current_event.multi_value_query_string_parameters or {})}
    sent |= {*(app.current_event.query_string_parameters or {})}
    unknown = sorted(sent - taken)
    if unknown:
        takes = ", ".join(sorted(taken)) if taken else "none"
        details = [
            ErrorDetail(
                field=name[:_NAME_CHARS],
                message=f"is not a parameter of this route (it takes {takes})",
                type="unknown_parameter",
            )
            for name in unknown
        ]
        raise InvalidInput(f"{details[0].field}: is not a query parameter of this route (it takes {takes})", details)
    return next_middleware(app)
