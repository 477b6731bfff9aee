"""Consumers of the events the gateway publishes: the limits providers report become a connection's discovered
capacity, and each completion is counted in hourly and daily usage statistics."""
