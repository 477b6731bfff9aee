"""The local stack: the API of `infra/system.py` on loopback, with no AWS account and no Docker.

`python -m local_stack` starts moto in-process, creates the tables, bus and key that `infra/system.py`
describes, bootstraps a workspace, and serves an API Gateway REST (Lambda proxy) look-alike that calls
the real handlers in `functions/`.
"""
