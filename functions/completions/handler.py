"""The OpenAI-compatible endpoint: chat completions and the model list, through AI connections; and the test of a
connection, which opens its credentials and reaches its provider as a completion would."""

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx import wiring
from vmx.clock import utc_now
from vmx.completions.http_json import HOP_HEADER
from vmx.completions.openai_models import ChatCompletion, ChatCompletionRequest
from vmx.connections.models import ConnectionCreate, ConnectionPatch
from vmx.deadline import Deadline
from vmx.entry import Observed
from vmx.entry.api import ApiFunction
from vmx.errors import InvalidInput
from vmx.http.app import current_principal, resolve
from vmx.http.openai_errors import KEEPALIVE_INTERVAL_SECONDS, event_stream, whole_answer
from vmx.http.rate_limits import rate_limit_headers
from vmx.http.streaming import Exchange, StreamingResponse
from vmx.settings import BOOKKEEPING_SECONDS, CompletionsSettings
from vmx.use_cases.completions import CompletionOutcome, CompletionService, StreamOutcome
from vmx.use_cases.connection_tests import ConnectionTest
from vmx.use_cases.connections import ConnectionScope
from vmx.use_cases.model_views import ModelList
from vmx.wiring import Gateway


def _gateway(settings: CompletionsSettings, observed: Observed) -> Gateway:
    return wiring.gateway(settings, wiring.event_publisher(settings, observed.logger, observed.metrics))


function = ApiFunction(CompletionsSettings.from_environ, _gateway)
app, logger, metrics = function.app, function.observed.logger, function.observed.metrics

ENVIRONMENT = "/api/v1/workspaces/<workspaceId>/environments/<environmentId>"
_CHANGES = "Optional: the body of an update (PATCH), to test the connection as it would leave it; nothing is stored."
_DRAFT = "The body that would create the connection (POST .../ai-connections)."
# What the bookkeeping leaves of the invocation's time: the metrics' flush and the runtime's last report.
FLUSH_SECONDS = 1.0


def settings() -> CompletionsSettings:
    return function.settings.get()


def service() -> CompletionService:
    return function.dependencies.get().completions


@cache
def answers() -> ThreadPoolExecutor:
    """Where a whole answer is waited for, so that the response can keep API Gateway's line open meanwhile."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="answer")


@app.post(
    ENVIRONMENT + "/chat/completions",
    responses={
        200: {
            "description": "The answer: a chat.completion, or with `stream` its chat.completion.chunk events.",
            "content": {
                "application/json": {"model": ChatCompletion},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        }
    },
)
def create_chat_completion(
    workspaceId: UUID, environmentId: UUID, request: Annotated[ChatCompletionRequest, Body()]
) -> Response[Any]:
    if app.current_event.headers.get(HOP_HEADER) is not None:
        # sent by this gateway to a "provider": a connection points back at it; refused before admission
        raise InvalidInput(
            "this request came from this gateway: an AI connection's baseUrl leads back to it", code="loop_detected"
        )
    exchange: Exchange = app.context["exchange"]
    principal = current_principal(app)
    source_ip = app.current_event.request_context.identity.source_ip
    scope = ConnectionScope(str(workspaceId), str(environmentId))

    def complete() -> CompletionOutcome | StreamOutcome:
        return service().complete(principal, scope, request, source_ip, exchange.deadline, exchange.afterwards)

    if request.stream:
        outcome = complete()
    else:
        answer = answers().submit(complete)
        try:
            outcome = answer.result(timeout=settings().whole_answer_keepalive_after_seconds)
        except FutureTimeout:
            # Still thinking: the status is committed to 200 so that blanks can keep the line open.
            keepalive_every = min(KEEPALIVE_INTERVAL_SECONDS, settings().whole_answer_keepalive_after_seconds)
            exchange.stream(whole_answer(answer, exchange.deadline, logger, keepalive_every))
            metrics.add_metric(name="CompletionsKeptAlive", unit=MetricUnit.Count, value=1)
            return Response(200, content_types.APPLICATION_JSON, "")
    metrics.add_metric(name="CompletionsServed", unit=MetricUnit.Count, value=1)
    headers = rate_limit_headers(outcome.rate_limits, utc_now())
    if isinstance(outcome, StreamOutcome):
        exchange.stream(event_stream(outcome.chunks, request.include_stream_usage, logger))
        return Response(200, "text/event-stream", "", headers=headers)
    return Response(200, content_types.APPLICATION_JSON, outcome.completion.model_dump_json(), headers=headers)


@app.get(ENVIRONMENT + "/models")
def list_models(workspaceId: UUID, environmentId: UUID) -> ModelList:
    models = service().list_models(current_principal(app), ConnectionScope(str(workspaceId), str(environmentId)))
    return ModelList.of(models)


@app.post(ENVIRONMENT + "/ai-connections/<connectionId>/test")
def test_connection(
    workspaceId: UUID,
    environmentId: UUID,
    connectionId: UUID,
    changes: Annotated[ConnectionPatch | None, Body(description=_CHANGES)] = None,
) -> ConnectionTest:
    """Tests the connection's credentials and configuration with the cheapest call its provider offers (a model
    list where it has one), never spending capacity or answering a secret; the outcome is in the body."""
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    tests = function.dependencies.get().connection_tests
    return _told(tests.test(current_principal(app), scope, str(connectionId), changes))


@app.post(ENVIRONMENT + "/ai-connections/test")
def test_new_connection(
    workspaceId: UUID, environmentId: UUID, draft: Annotated[ConnectionCreate, Body(description=_DRAFT)]
) -> ConnectionTest:
    """Tests a connection before it is created, as the test of a stored one does; nothing is stored."""
    scope = ConnectionScope(str(workspaceId), str(environmentId))
    return _told(function.dependencies.get().connection_tests.test_new(current_principal(app), scope, draft))


def _told(tested: ConnectionTest) -> ConnectionTest:
    logger.info("connection tested", extra={"connection_id": tested.connection_id, "outcome": tested.outcome})
    return tested


def _after_response(exchange: Exchange, invocation_ends: Deadline) -> None:
    """The reconcile and the events, once the client has the whole answer; their metrics are flushed here, as
    the handler's were flushed when it returned."""
    failed = exchange.afterwards.run(logger, invocation_ends.sooner(FLUSH_SECONDS))
    if failed:
        metrics.add_metric(name="BookkeepingFailed", unit=MetricUnit.Count, value=failed)
    metrics.flush_metrics()


def serve(event: dict[str, Any], context: LambdaContext) -> StreamingResponse:
    """The response is streamed by the runtime (vmx.runtime) after this returns: its body runs the provider's
    stream, then `after` the bookkeeping."""
    invocation_ends = Deadline.after(context.get_remaining_time_in_millis() / 1000)
    exchange = Exchange(invocation_ends.sooner(BOOKKEEPING_SECONDS))
    app.context["exchange"] = exchange
    result = resolve(app, event, context, allowed_origin=settings().console_origin)
    return exchange.response(result, after=lambda: _after_response(exchange, invocation_ends))


# Completions carry prompts and answers: they are never trace metadata (vmx.entry).
lambda_handler = function.observed.entry(serve)
