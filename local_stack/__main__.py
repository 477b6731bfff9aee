"""`python -m local_stack`: the whole API on loopback, from `infra/system.py`, until Ctrl+C."""

import argparse
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from infra import system
from local_stack.console import ConsoleFiles
from local_stack.emulator import function_environment, moto_client, point_environment_at, provision, start_moto
from local_stack.event_delivery import LOCAL_VISIBILITY_TIMEOUT_SECONDS, EventDelivery, LocalQueue
from local_stack.gateway import ApiGateway
from local_stack.lambda_service import DEFAULT_MAX_INSTANCES, LambdaService
from local_stack.server import GatewayServer
from local_stack.state import (
    BOOTSTRAP_FILE,
    CREDENTIALS_KEY_FILE,
    cipher_environment,
    credentials_key,
    write_bootstrap,
)
from vmx.settings import BROWSER_ORIGIN_PATTERN

logger = logging.getLogger("local_stack")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Bootstrap(Protocol):
    """What `vmx.admin.bootstrap(environ)` returns: the first workspace, environment and API key."""

    @property
    def workspace_id(self) -> str: ...
    @property
    def environment_id(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    @property
    def api_key(self) -> SecretStr: ...


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument(
        "--authorizer-cache-seconds",
        type=float,
        default=system.AUTHORIZER_CACHE_SECONDS,
        help="how long the authorizer's answer for an Authorization header is kept, as API Gateway's TTL "
        "(0: every request is checked, so a revoked key stops working at once)",
    )
    parser.add_argument(
        "--max-instances",
        type=int,
        default=DEFAULT_MAX_INSTANCES,
        help="how many instances of each function may run at once, as Lambda's concurrency limit",
    )
    parser.add_argument(
        "--console-origin",
        default=os.environ.get(system.CONSOLE_ORIGIN_ENV_VAR),
        help="a browser origin (such as http://127.0.0.1:8080) allowed to call the API cross-origin, as "
        "the console's CloudFront origin is in AWS; the console served here needs none",
    )
    args = parser.parse_args(argv)
    # the functions are told the port before the server listens on it (OWN_API_HOSTS)
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    if args.max_instances < 1:
        parser.error("--max-instances must be at least 1")
    if args.authorizer_cache_seconds < 0:
        parser.error("--authorizer-cache-seconds cannot be negative")
    if args.console_origin and not re.fullmatch(BROWSER_ORIGIN_PATTERN, args.console_origin):
        parser.error(
            f"--console-origin {args.console_origin!r} is not an origin as browsers send it, such as http://127.0.0.1:8080"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Until serve_until_signal takes over, SIGTERM stops a starting stack as Ctrl+C does: cleanly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s local_stack %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    state_dir: Path = args.state_dir
    moto, endpoint_url = start_moto(args.host)
    try:
        point_environment_at(endpoint_url)
        provisioned = provision(system.TABLES, system.EVENT_QUEUES, endpoint_url, system.WORK_QUEUES)
        resources = provisioned.resources(
            cipher_environment(credentials_key(state_dir)),
            # Providers on this machine are what the local stack is for; the stack itself is no provider.
            own_api_hosts=",".join(f"{host}:{args.port}" for host in own_host_names(args.host)),
            console_origin=args.console_origin,
        )
        environments = {
            function.name: function_environment(function, resources, endpoint_url, os.environ)
            for function in system.FUNCTIONS
        }
        # Each function in instances of its own (python -m vmx.runtime), each told only its own environment.
        lambdas = LambdaService(system.FUNCTIONS, environments=environments, max_instances=args.max_instances)
        gateway = ApiGateway(
            system.ROUTES,
            lambdas.invoke,
            system.AUTHORIZER.name,
            args.console_origin,
            authorizer_cache_seconds=args.authorizer_cache_seconds,
        )
        try:
            console = ConsoleFiles(PROJECT_ROOT / system.CONSOLE_DIR)
            server = GatewayServer((args.host, args.port), gateway, system.MAX_BODY_BYTES, console)
        except OSError as exc:
            logger.error("cannot listen on %s:%d (%s); pass --port or set PORT", args.host, args.port, exc)
            return 1
        delivery = EventDelivery(provisioned.queues, moto_client("sqs", endpoint_url), lambdas.invoke)
        # Leaving the block stops the pollers first, then the server, then the functions' instances; moto
        # stops last of all.
        with lambdas, server, delivery:
            # A bootstrap file from an earlier run names data that no longer exists.
            (state_dir / BOOTSTRAP_FILE).unlink(missing_ok=True)
            # Imported once the environment is set, as Lambda sets it before importing a handler.
            from vmx.admin import bootstrap

            # what the tenancy function reads, as its own environment says
            first: Bootstrap = bootstrap(environments[system.TENANCY.name])
            not_ready = lambdas.wait_until_initialised()
            if not_ready:
                logger.warning("not initialised (see their errors above): %s", ", ".join(not_ready))
            base_url = f"http://{args.host}:{server.port}"
            bootstrap_path = write_bootstrap(
                state_dir,
                {
                    "baseUrl": base_url,
                    "apiKey": first.api_key.get_secret_value(),
                    "workspaceId": first.workspace_id,
                    "environmentId": first.environment_id,
                },
            )
            print_banner(
                base_url,
                first,
                bootstrap_path,
                state_dir,
                provisioned.queues,
                args.max_instances,
                args.authorizer_cache_seconds,
            )
            serve_until_signal(server)
            bootstrap_path.unlink(missing_ok=True)
    except KeyboardInterrupt:
        # Ctrl+C (or SIGTERM) while starting: what had started has been stopped on the way out
        logger.info("stopped while starting")
        return 130
    finally:
        moto.stop()
    logger.info("stopped")
    return 0


def own_host_names(host: str) -> list[str]:
    """The names a client on this machine may reach the local stack by."""
    loopback = {"127.0.0.1", "localhost", "::1"}
    return sorted(loopback) if host in loopback or host == "0.0.0.0" else [host]  # noqa: S104 - compared, not bound


def _fed_by(spec: system.EventQueue | system.WorkQueue) -> str:
    return (
        ", ".join(spec.detail_types)
        if isinstance(spec, system.EventQueue)
        else f"{spec.name} (sent by {', '.join(spec.senders)})"
    )


def print_banner(
    base_url: str,
    first: Bootstrap,
    bootstrap_path: Path,
    state_dir: Path,
    queues: Sequence[LocalQueue],
    max_instances: int,
    authorizer_cache_seconds: float,
) -> None:
    deliveries = "\n".join(
        f"  {_fed_by(queue.spec):<20} -> {queue.spec.consumer} "
        f"(dead letters after {queue.spec.max_receive_count} attempts: {queue.dead_letter_url.rsplit('/', 1)[-1]})"
        for queue in queues
    )
    schedules = ", ".join(f"{schedule.function} ({schedule.expression} in AWS)" for schedule in system.SCHEDULES)
    print(
        f"""
VM-X AI Connections is running locally.

  Console         {base_url}/
  Base URL        {base_url}
  API key         {first.api_key.get_secret_value()}
  Workspace ID    {first.workspace_id}
  Environment ID  {first.environment_id}

  The same, as JSON: {bootstrap_path}

Data lives in memory and does NOT survive a restart: a restart starts empty, with a new workspace,
environment and API key. Only the credentials encryption key ({state_dir / CREDENTIALS_KEY_FILE}) is kept.
As in AWS, the authorizer's answer for a key is kept {authorizer_cache_seconds:g} seconds: a revoked key may still pass
for that long (--authorizer-cache-seconds 0 checks every request).

Each function runs as in Lambda: in processes of its own (python -m vmx.runtime), each serving one
invocation at a time, up to {max_instances} of them at once (--max-instances).

Events go through the same rules and queues as in AWS, to the same consumers, within a second or two:
{deliveries}
A record a consumer fails is retried every {LOCAL_VISIBILITY_TIMEOUT_SECONDS} seconds until it reaches its dead-letter queue.
Schedules do not run locally: {schedules or "none"}.

Stop with Ctrl+C.
""",
        flush=True,
    )


def serve_until_signal(server: GatewayServer) -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, name="gateway")
    serving.start()
    stop.wait()
    logger.info("stopping")
    server.shutdown()
    serving.join()


if __name__ == "__main__":
    sys.exit(main())
