"""Capacity enforcement: fixed UTC windows and the counters that admit requests within them."""
