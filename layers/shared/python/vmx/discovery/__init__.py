"""Discovered capacity: the limits providers report for a connection, and when they are news."""
