"""The OpenAI-compatible endpoint: chat completions and the model list, through AI connections."""

import os
from functools import cache
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx import wiring
from vmx.clock import utc_now
from vmx.completions.openai_models import ChatCompletionRequest, sse_events
from vmx.connections.service import ConnectionScope
from vmx.events.publisher import EventPublisher
from vmx.gateway.service import CompletionService
from vmx.gateway.views import ModelList
from vmx.http.app import current_principal, new_app, resolve
from vmx.http.openai_errors import domain_refusal, rate_limit_headers, register_openai_error_handlers
from vmx.settings import CompletionsSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = new_app(logger, register_openai_error_handlers)

ENVIRONMENT = "/api/v1/workspaces/<workspaceId>/environments/<environmentId>"


def _event_publisher(bus_name: str, region: str) -> EventPublisher:
    def count_unpublished(count: int) -> None:
        metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=count)

    return wiring.event_publisher(bus_name, region, logger, count_unpublished)


@cache
def settings() -> CompletionsSettings:
    return CompletionsSettings.from_environ(os.environ)


@cache
def service() -> CompletionService:
    return wiring.completion_service(settings(), _event_publisher(settings().event_bus_name, settings().aws_region))


@app.post(ENVIRONMENT + "/chat/completions")
def create_chat_completion(
    workspaceId: UUID, environmentId: UUID, request: Annotated[ChatCompletionRequest, Body()]
) -> Response[Any]:
    source_ip = app.current_event.request_context.identity.source_ip
    outcome = service().complete(
        current_principal(app), ConnectionScope(str(workspaceId), str(environmentId)), request, source_ip
    )
    metrics.add_metric(name="CompletionsServed", unit=MetricUnit.Count, value=1)
    headers = rate_limit_headers(outcome.rate_limits, utc_now())
    if request.stream:
        # Buffered: API Gateway REST returns the whole body at once, as one valid event stream.
        return Response(200, "text/event-stream", sse_events(outcome.completion, request), headers=headers)
    return Response(200, content_types.APPLICATION_JSON, outcome.completion.model_dump_json(), headers=headers)


@app.get(ENVIRONMENT + "/models")
def list_models(workspaceId: UUID, environmentId: UUID) -> ModelList:
    models = service().list_models(current_principal(app), ConnectionScope(str(workspaceId), str(environmentId)))
    return ModelList.of(models)


# Completions carry prompts and answers: the tracer must not record them.
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context, refuse=domain_refusal, allowed_origin=settings().console_origin)
