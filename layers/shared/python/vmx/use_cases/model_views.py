"""The OpenAI-compatible model list."""

from typing import Literal

from pydantic import BaseModel


class ModelView(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelView]

    @classmethod
    def of(cls, model_ids: list[str]) -> "ModelList":
        return cls(data=[ModelView(id=model_id, owned_by=model_id.partition("/")[0]) for model_id in model_ids])
