"""Our standard function: the one place that decides runtime, architecture, logs, tracing and role."""

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.system import Function

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.lambda_handler"
SERVICE_NAME = "vmx-ai-connections"
METRICS_NAMESPACE = "VmxAiConnections"
# One value for Powertools and for Lambda's log filter: if they differ, one silently drops the other's logs.
LOG_LEVEL = "INFO"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc"]
# A function that streams its responses starts vmx.runtime instead of the managed runtime's loop, through this
# wrapper script of the shared layer (layers/shared/bin, at /opt/bin in the function).
EXEC_WRAPPER_ENV_VAR = "AWS_LAMBDA_EXEC_WRAPPER"
STREAMING_RUNTIME = "/opt/bin/vmx-streaming-runtime"


class StandardFunction(Construct):
    """A Lambda function with its own role, which starts with nothing but writing its own logs and traces."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: Function,
        functions_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION)
        # An own role instead of AWSLambdaBasicExecutionRole, which may write to every log group in the account.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {spec.name} function",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(functions_dir / spec.source_dir), exclude=ASSET_EXCLUDES),
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            role=self.role,
            layers=list(layers),
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel(LOG_LEVEL),
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            # The standard settings come last, so no caller can override them.
            environment={
                **environment,
                **({EXEC_WRAPPER_ENV_VAR: STREAMING_RUNTIME} if spec.streams_responses else {}),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": LOG_LEVEL,
                # X-Ray must never hold a response body: creating an API key returns the key, once.
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            },
        )
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="python3.12 is pinned on purpose: the dependencies layer is built for it from the lock "
                "file (Makefile LAMBDA_PYTHON), so the runtime moves only together with that layer.",
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Only xray:PutTraceSegments and xray:PutTelemetryRecords, added for active tracing: "
                "X-Ray supports no resource-level permissions. The infra tests check that no other "
                "statement of a function role has a wildcard resource.",
            )
        )
