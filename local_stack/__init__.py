"""The local stack: the API of `infra/system.py` on loopback, with no AWS account and no Docker.

`python -m local_stack` starts moto in-process, creates the tables, bus, event queues and key that
`infra/system.py` describes, bootstraps a workspace, serves an API Gateway REST (Lambda proxy) look-alike
that calls the real handlers in `functions/`, and delivers the events on the bus to their consumer
handlers through the queues, as Lambda's SQS event source does. Schedules do not run locally.
"""
