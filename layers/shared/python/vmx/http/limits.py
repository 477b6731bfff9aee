# Largest request body any route accepts. API Gateway's WAF rule and the handlers both enforce it.
MAX_BODY_BYTES = 64 * 1024
# On every response, the functions' and API Gateway's own: no browser guesses a JSON body's type, and no cache
# keeps one (the response that shows a new API key included).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
