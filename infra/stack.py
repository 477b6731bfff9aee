"""The stack: wires the constructs together from the one description of the system in infra/system.py."""

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import system
from infra.alarms import Alarms
from infra.api import Api
from infra.console import ConsoleHosting
from infra.data import Data
from infra.environments import Resources, environment_of
from infra.events import Events, QueueDelivery, ScheduledInvocation
from infra.keys import CredentialsKey
from infra.layers import Layers
from infra.provider_access import allow_assuming_provider_roles
from infra.standard_function import StandardFunction

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# CDK context keys (`cdk synth -c key=folder`) that point the stack at other asset folders.
FUNCTIONS_DIR_CONTEXT = "functionsDir"
DEPENDENCIES_LAYER_DIR_CONTEXT = "dependenciesLayerDir"
CONSOLE_DIR_CONTEXT = "consoleDir"
DEFAULT_DEPENDENCIES_LAYER_DIR = PROJECT_ROOT / ".build" / "layers" / "dependencies"
# The stack's outputs naming the roles of the functions that assume Bedrock connections' roles
# (system.Function.assumes_provider_roles), which a connection's role must trust.
BEDROCK_ROLE_ASSUMERS = {
    system.COMPLETIONS.name: "CompletionsRoleArn",
    system.BEDROCK_QUOTAS.name: "BedrockQuotasRoleArn",
}
# The cipher the domain uses for credentials in AWS; the local stack sets another.
CREDENTIALS_CIPHER = "kms"


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


class VmxAiConnectionsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description="VM-X AI Connections: the serverless API", **kwargs)
        functions_dir = self._context_dir(FUNCTIONS_DIR_CONTEXT, PROJECT_ROOT / "functions")
        dependencies_dir = self._context_dir(DEPENDENCIES_LAYER_DIR_CONTEXT, DEFAULT_DEPENDENCIES_LAYER_DIR)
        console_dir = self._context_dir(CONSOLE_DIR_CONTEXT, PROJECT_ROOT / system.CONSOLE_DIR)

        self.data = Data(self, "Data", tables=system.TABLES)
        self.credentials_key = CredentialsKey(self, "CredentialsKey")
        self.events = Events(self, "Events")
        self.layers = Layers(
            self, "Layers", shared_dir=PROJECT_ROOT / "layers" / "shared", dependencies_dir=dependencies_dir
        )

        self.functions: dict[str, StandardFunction] = {}
        for spec in system.FUNCTIONS:
            function = StandardFunction(
                self, _construct_id(spec.name), spec=spec, functions_dir=functions_dir, layers=self.layers.all
            )
            for table_id, actions in spec.tables.items():
                self.data.grant(function.role, table_id, actions)
            if spec.kms_actions:
                self.credentials_key.grant(function.role, spec.kms_actions)
            if spec.assumes_provider_roles:
                allow_assuming_provider_roles(function.role)
            if spec.publishes_events:
                self.events.allow_publishing(function.role)
            self.functions[spec.name] = function

        self.alarms = Alarms(self, "Alarms")
        self.event_queues = {
            spec.name: QueueDelivery(
                self,
                _construct_id(spec.name) + "Queue",
                spec=spec,
                bus=self.events.bus,
                consumer=self.functions[spec.consumer],
                alarm_action=self.alarms.action,
            )
            for spec in system.EVENT_QUEUES
        }
        self.work_queues = {
            spec.name: QueueDelivery(
                self,
                _construct_id(spec.name) + "Queue",
                spec=spec,
                bus=self.events.bus,
                consumer=self.functions[spec.consumer],
                alarm_action=self.alarms.action,
                senders=[self.functions[name] for name in spec.senders],
            )
            for spec in system.WORK_QUEUES
        }
        self.schedules = {
            spec.name: ScheduledInvocation(
                self, _construct_id(spec.name) + "Schedule", spec=spec, function=self.functions[spec.function]
            )
            for spec in system.SCHEDULES
        }

        self.api = Api(
            self,
            "Api",
            routes=system.ROUTES,
            functions={name: function.function for name, function in self.functions.items()},
            authorizer_function=self.functions[system.AUTHORIZER.name].function,
            streaming_functions=system.STREAMING_FUNCTIONS,
        )
        # The console's CSP names the API, and the API's CORS names the console: the API comes first,
        # and learns the console's origin once the distribution exists.
        self.console = ConsoleHosting(
            self, "Console", console_dir=console_dir, api_url=self.api.rest_api.url, api_origin=self.api.origin
        )
        self.api.allow_browser_origin(self.console.origin)

        # Each function's environment from its spec alone, as the local stack computes it, once every resource
        # it names exists.
        self.resources = Resources(
            table_names={table_id: table.table_name for table_id, table in self.data.tables.items()},
            event_bus_name=self.events.bus.event_bus_name,
            queue_urls={name: delivery.queue.queue_url for name, delivery in self.work_queues.items()},
            cipher={
                "CREDENTIALS_CIPHER": CREDENTIALS_CIPHER,
                system.CREDENTIALS_KEY_ENV_VAR: self.credentials_key.key.key_arn,
            },
            # No connection may point at this API (vmx.providers.addresses): its own execute-api host name.
            own_api_hosts=f"{self.api.rest_api.rest_api_id}.execute-api.{self.region}.{self.url_suffix}",
            console_origin=self.console.origin,
        )
        for spec in system.FUNCTIONS:
            self.functions[spec.name].set_environment(environment_of(spec, self.resources))

        # The bootstrap command reads these by name.
        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url)
        CfnOutput(self, "ConsoleUrl", value=self.console.origin)
        for table_id, table in self.data.tables.items():
            CfnOutput(self, f"{table_id}Name", value=table.table_name)
        CfnOutput(self, "CredentialsKeyArn", value=self.credentials_key.key.key_arn)
        CfnOutput(self, "EventBusName", value=self.events.bus.event_bus_name)
        outbox = self.work_queues["event-outbox"]
        CfnOutput(self, "EventOutboxQueueUrl", value=outbox.queue.queue_url)
        # What `aws sqs start-message-move-task --source-arn` redrives to the outbox once the bus works again.
        CfnOutput(self, "EventOutboxDeadLetterQueueArn", value=outbox.dead_letter_queue.queue_arn)
        # Subscribe to it (email, chat, paging) to hear about events that failed for good.
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
        # The roles that assume a Bedrock connection's role: templates/bedrock-connection-role.json admits them.
        for name, output in BEDROCK_ROLE_ASSUMERS.items():
            CfnOutput(self, output, value=self.functions[name].role.role_arn)

    def _context_dir(self, key: str, default: Path) -> Path:
        value = self.node.try_get_context(key)
        return Path(value).resolve() if value else default
