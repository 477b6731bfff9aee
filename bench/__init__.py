"""Benchmarks, run as modules: `uv run --frozen python -m bench.<name>`. Not collected by pytest."""
