from collections.abc import Iterable
from typing import Any

from vmx.api_model import ApiModel
from vmx.providers.catalog import Provider, ProviderId


class ProviderView(ApiModel):
    id: ProviderId
    name: str
    description: str
    secret_fields: list[str]
    config_schema: dict[str, Any]

    @classmethod
    def of(cls, provider: Provider) -> "ProviderView":
        return cls(
            id=provider.id,
            name=provider.name,
            description=provider.description,
            secret_fields=sorted(provider.secret_fields),
            config_schema=provider.config_schema(),
        )


class ProviderList(ApiModel):
    items: list[ProviderView]

    @classmethod
    def of(cls, providers: Iterable[Provider]) -> "ProviderList":
        return cls(items=[ProviderView.of(provider) for provider in providers])
