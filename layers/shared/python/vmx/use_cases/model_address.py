"""`<connectionName>/<modelId>`: how a completion request names the connection and the provider's model."""

from dataclasses import dataclass

from vmx.errors import ErrorDetail, InvalidInput


@dataclass(frozen=True)
class ModelAddress:
    connection_name: str
    model_id: str

    def __str__(self) -> str:
        return f"{self.connection_name}/{self.model_id}"


def parse_model(value: str) -> ModelAddress:
    # Connection names cannot contain "/", so the first one splits; model ids may contain more ("meta/llama-3").
    connection_name, separator, model_id = value.partition("/")
    if not separator or not connection_name or not model_id:
        message = f"model must be '<connectionName>/<modelId>', for example 'openai-prod/gpt-4o-mini'; got '{value}'"
        raise InvalidInput(message, [ErrorDetail(field="model", message=message, type="invalid_model")])
    return ModelAddress(connection_name, model_id)
