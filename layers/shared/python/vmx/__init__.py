"""VM-X AI Connections: shared domain, adapters and API code."""
