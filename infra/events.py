"""The EventBridge bus that later features publish to; nothing publishes to it yet."""

from aws_cdk import Stack
from aws_cdk import aws_events as events
from constructs import Construct


class Events(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Named after the stack so that rules in other stacks and accounts can address it.
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"{Stack.of(self).stack_name}-events")
