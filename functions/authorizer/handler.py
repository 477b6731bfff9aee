"""API Gateway REQUEST authorizer: authenticates the API key; the handlers authorize each action.

Raising "Unauthorized" makes API Gateway answer 401. An Allow covers the whole API because API Gateway
caches the answer per key for every route; the handlers refuse what the key's role or scope forbids
(403 with a reason), which a Deny here could not explain.
"""

import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx import wiring
from vmx.access.authentication import authenticate
from vmx.access.context import authorizer_context
from vmx.entry import Dependencies, Observed
from vmx.settings import AuthorizerSettings

observed = Observed()
logger = observed.logger
repository = Dependencies(lambda: wiring.tenancy_repository(AuthorizerSettings.from_environ(os.environ)))


@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def authorize(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    key = authenticate(repository.get(), event.headers.get("authorization"))
    if key is None:
        logger.info("API key refused")
        raise Exception("Unauthorized")
    arn = event.parsed_arn
    whole_api = f"arn:{arn.partition}:execute-api:{arn.region}:{arn.aws_account_id}:{arn.api_id}/{arn.stage}/*"
    return {
        "principalId": key.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": whole_api,
                }
            ],
        },
        "context": authorizer_context(key),
    }


# Not traced by the tracer: a refused key is signalled by raising, and the tracer would log each one as an
# error with a traceback. Lambda's active tracing still records the invocation.
lambda_handler = observed.entry(authorize, traced=False)
