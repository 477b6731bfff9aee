"""The CDK app that `make synth` and `make deploy` run (see cdk.json)."""

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.layers import MissingDependenciesLayerError
from infra.stack import VmxAiConnectionsStack

STACK_NAME = "VmxAiConnections"


def main() -> None:
    app = cdk.App()
    try:
        VmxAiConnectionsStack(app, STACK_NAME)
    except MissingDependenciesLayerError as missing:
        sys.exit(str(missing))
    # The same checks as the infra tests, so that an unacknowledged finding also stops a synth or deploy.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
