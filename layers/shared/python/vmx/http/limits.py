# Largest request body any route accepts. API Gateway's WAF rule and the handlers both enforce it.
MAX_BODY_BYTES = 64 * 1024
