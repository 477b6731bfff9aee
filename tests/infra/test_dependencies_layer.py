"""`make layer` keeps botocore's models only for the services the functions call (Makefile BOTOCORE_SERVICES): a
client for any other would fail with UnknownServiceError in AWS alone, so the list must name every service the
shared layer makes a client for."""

import re

from infra.stack import PROJECT_ROOT

SHARED = PROJECT_ROOT / "layers" / "shared" / "python" / "vmx"
# run on an operator's machine with their own boto3, never in a function
NOT_IN_LAMBDA = {SHARED / "admin.py"}
# boto3.client("sqs"), session.client("bedrock-runtime"), self._client("bedrock") and the like
CLIENT_CALL = re.compile(r"""client\(\s*["']([a-z0-9-]+)["']""")


def kept_services() -> set[str]:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    (names,) = re.findall(r"^BOTOCORE_SERVICES := (.+)$", makefile, flags=re.M)
    return set(names.split())


def called_services() -> set[str]:
    called = {
        service
        for path in SHARED.rglob("*.py")
        if path not in NOT_IN_LAMBDA
        for service in CLIENT_CALL.findall(path.read_text(encoding="utf-8"))
    }
    # pynamodb's models make their own DynamoDB client
    return called | {"dynamodb"}


def test_the_layer_keeps_the_model_of_every_service_the_functions_call() -> None:
    assert called_services() <= kept_services()


def test_the_layer_keeps_no_model_nothing_calls() -> None:
    assert kept_services() == called_services()
