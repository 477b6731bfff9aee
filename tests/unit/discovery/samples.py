"""Rate-limit headers as providers send them, beside those of tests/loopback_providers.py."""

# As api.groq.com answers a free-tier llama-3.1-8b-instant request: 14,400 requests a day, 6,000 tokens a minute.
GROQ_HEADERS = {
    "x-ratelimit-limit-requests": "14400",
    "x-ratelimit-limit-tokens": "6000",
    "x-ratelimit-remaining-requests": "14370",
    "x-ratelimit-remaining-tokens": "5997",
    "x-ratelimit-reset-requests": "2m59.56s",
    "x-ratelimit-reset-tokens": "7.66s",
}
