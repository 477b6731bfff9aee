"""The synthesized stack, with the few questions the infra tests ask of its template."""

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from aws_cdk import CfnElement
from aws_cdk.assertions import Template
from constructs import IConstruct

from infra.stack import VmxAiConnectionsStack

Resource = dict[str, Any]


def readable_arn(resource: Any) -> str:
    """An IAM resource as the logical ID it points at, plus any suffix: `TenancyTable/index/gsi1`."""
    match resource:
        case "*" | "arn:aws:iam::*:role/*":
            return str(resource)
        case {"Fn::GetAtt": [str(logical_id), "Arn"]}:
            return logical_id
        case {"Fn::Join": ["", [{"Fn::GetAtt": [str(logical_id), "Arn"]}, str(suffix)]]}:
            return logical_id + suffix
    raise AssertionError(f"an IAM resource the tests do not expect: {resource}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Synthesized:
    stack: VmxAiConnectionsStack
    template: Template
    # The cloud assembly the template was synthesized into.
    assembly_dir: Path

    @cached_property
    def resources(self) -> dict[str, Resource]:
        return cast(dict[str, Resource], self.template.to_json()["Resources"])

    def of_type(self, resource_type: str) -> dict[str, Resource]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.resources[logical_id]["Properties"])

    def logical_id(self, construct: IConstruct) -> str:
        return str(self.stack.get_logical_id(cast(CfnElement, construct.node.default_child)))

    def function_id(self, name: str) -> str:
        return self.logical_id(self.stack.functions[name].function)

    def role_statements(self, function_name: str) -> list[dict[str, Any]]:
        role_ref = {"Ref": self.logical_id(self.stack.functions[function_name].role)}
        return [
            statement
            for policy in self.of_type("AWS::IAM::Policy").values()
            if role_ref in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def grants(self, function_name: str) -> set[tuple[str, str]]:
        """Every (action, resource) pair the function's role allows."""
        return {
            (action, readable_arn(resource))
            for statement in self.role_statements(function_name)
            if statement["Effect"] == "Allow"
            for action in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        }

    def metadata(self, metadata_type: str) -> list[tuple[str, Any]]:
        """(construct path, data) of each metadata entry of this type, read from the assembly on disk.

        Walking the construct tree through jsii instead takes seconds.
        """
        artifact = json.loads((self.assembly_dir / "manifest.json").read_text())["artifacts"][self.stack.artifact_id]
        by_path: dict[str, list[dict[str, Any]]] = artifact.get("metadata", {})
        extra_file = artifact.get("additionalMetadataFile")
        extra: dict[str, list[dict[str, Any]]] = (
            json.loads((self.assembly_dir / extra_file).read_text()) if extra_file else {}
        )
        return [
            (path, entry["data"])
            for entries_by_path in (by_path, extra)
            for path, entries in entries_by_path.items()
            for entry in entries
            if entry["type"] == metadata_type
        ]

    @cached_property
    def routes(self) -> dict[tuple[str, str], dict[str, Any]]:
        """API Gateway methods by (HTTP method, full resource path)."""
        api_resources = self.of_type("AWS::ApiGateway::Resource")

        def path(resource_id: Any) -> str:
            match resource_id:
                case {"Ref": str(logical_id)} if logical_id in api_resources:
                    parent = api_resources[logical_id]["Properties"]
                    return f"{path(parent['ParentId'])}/{parent['PathPart']}"
                case {"Fn::GetAtt": [_, "RootResourceId"]}:
                    return ""
            raise AssertionError(f"not an API resource: {resource_id}")

        return {
            (method["Properties"]["HttpMethod"], path(method["Properties"]["ResourceId"])): method["Properties"]
            for method in self.of_type("AWS::ApiGateway::Method").values()
        }
