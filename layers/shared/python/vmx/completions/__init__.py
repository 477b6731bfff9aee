"""Chat completions: OpenAI's wire shapes and the adapters that carry a request to each provider."""
