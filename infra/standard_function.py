"""Our standard function: the one place that decides runtime, architecture, logs, tracing and role."""

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.environments import LOG_LEVEL
from infra.environments import METRICS_NAMESPACE as METRICS_NAMESPACE
from infra.environments import SERVICE_NAME as SERVICE_NAME
from infra.system import Function

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.lambda_handler"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc"]
# A function that streams its responses starts vmx.runtime instead of the managed runtime's loop, through this
# wrapper script of the shared layer (layers/shared/bin, at /opt/bin in the function).
EXEC_WRAPPER_ENV_VAR = "AWS_LAMBDA_EXEC_WRAPPER"
STREAMING_RUNTIME = "/opt/bin/vmx-streaming-runtime"


class StandardFunction(Construct):
    """A Lambda function with its own role, which starts with nothing but writing its own logs and traces.

    Its environment is what the stack gives it (`set_environment`) once every resource it names exists, and what
    starts a streaming function's runtime in AWS.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: Function,
        functions_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
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
            environment={EXEC_WRAPPER_ENV_VAR: STREAMING_RUNTIME} if spec.streams_responses else {},
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

    def set_environment(self, environment: Mapping[str, str]) -> None:
        """Gives the function `environment` (infra.environments.environment_of), which cannot replace its runtime."""
        if EXEC_WRAPPER_ENV_VAR in environment:
            raise ValueError(f"{EXEC_WRAPPER_ENV_VAR} is the standard function's to set")
        for name, value in environment.items():
            self.function.add_environment(name, value)
