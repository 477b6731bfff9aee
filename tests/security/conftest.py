"""The security tier: what an attacker or a careless user sends, through the real handlers on moto (the
functional tier's fixtures)."""

from tests.functional.conftest import aws, gateway, platform_admin, tenancy, tenant

__all__ = ["aws", "gateway", "platform_admin", "tenancy", "tenant"]
