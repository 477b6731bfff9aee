"""Cold starts: each function's cold import of its handler against `import boto3`, and the size of what each
function deploys, against the issue's goals (at most 1.5 times `import boto3`; at most 25 MB unzipped).

Imports run as Lambda runs them from a layer: in a fresh interpreter, from source (the assets leave out
`__pycache__`, infra.standard_function.ASSET_EXCLUDES, and /opt is read-only, so nothing is byte-compiled), with
only the function's code, the shared layer and the dependencies on the path, in a Lambda-like environment (its
tracer enabled, so X-Ray patches what it patches in AWS). The dependencies are the lock file's, installed for this
machine (the layer itself is built for arm64 and Python 3.12) into .build/bench/cold-start, once. Prints markdown.

    uv run --frozen python -m bench.cold_start [--repeat N] [--function NAME ...] [--breakdown] [--bytecode]

`--shared-dir` and `--functions-dir` measure a copy of the shared layer or of the functions instead, to try a
change before making it.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from infra import system
from infra.environments import Resources, environment_of
from infra.stack import DEFAULT_DEPENDENCIES_LAYER_DIR, PROJECT_ROOT
from infra.standard_function import ASSET_EXCLUDES, HANDLER, RUNTIME

# The goals, reported against, not asserted.
TARGET_IMPORT_RATIO = 1.5
TARGET_ARTIFACT_MB = 25.0
# Lambda's quotas count a megabyte as 2**20 bytes (250 MB unzipped is 262,144,000 bytes).
MB = 2**20
SHARED_LAYER_DIR = PROJECT_ROOT / "layers" / "shared"
HOST_DEPENDENCIES_DIR = PROJECT_ROOT / ".build" / "bench" / "cold-start"
HANDLER_MODULE = HANDLER.split(".")[0]
# What Lambda sets in every function, with nothing that could reach beyond this machine: the X-Ray daemon on
# loopback, no instance metadata, no shared config or credentials files.
REGION = "us-east-1"
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EXECUTION_ENV": f"AWS_Lambda_{RUNTIME.name}",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_FORMAT": "JSON",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "_HANDLER": HANDLER,
}
# Names for what a deployment creates; only their shape matters here.
RESOURCES = Resources(
    table_names={table.logical_id: f"bench-{table.logical_id.lower()}" for table in system.TABLES},
    event_bus_name="bench-bus",
    queue_urls={
        queue.name: f"https://sqs.{REGION}.amazonaws.com/123456789012/{queue.name}" for queue in system.WORK_QUEUES
    },
    cipher={
        "CREDENTIALS_CIPHER": "kms",
        system.CREDENTIALS_KEY_ENV_VAR: f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-0000-0000-000000000000",
    },
    own_api_hosts=f"abcdefghij.execute-api.{REGION}.amazonaws.com",
    console_origin="https://console.example.com",
)
# Run by `python -S -B -c`: nothing but the standard library before the clock starts; `time` is built in.
# After the import, "set-up" builds what the module builds when first invoked, before its first AWS request: its
# vmx.entry.Dependencies (settings, use cases, clients), directly or held by an entry object, and any argument-free
# functools.cache factory. No request is sent.
PROBE = """
import sys, time
sys.path[:0] = {paths!r}
cpu, wall = time.process_time(), time.perf_counter()
__import__({module!r})
imported = time.process_time() - cpu, time.perf_counter() - wall
module = sys.modules[{module!r}]
entry = sys.modules.get("vmx.entry")
def built(value):
    if entry is not None and isinstance(value, entry.Dependencies):
        value.get()
    elif entry is not None and isinstance(getattr(value, "dependencies", None), entry.Dependencies):
        value.dependencies.get()
    elif hasattr(value, "cache_info") and getattr(value, "__module__", None) == {module!r} \\
            and getattr(getattr(value, "__wrapped__", None), "__code__", None) is not None \\
            and value.__wrapped__.__code__.co_argcount == 0:
        value()
for value in list(vars(module).values()):
    built(value)
set_up = time.process_time() - cpu, time.perf_counter() - wall
import json
print(json.dumps({{"import": imported, "set_up": set_up}}))
"""


@dataclass(frozen=True)
class Target:
    """One thing to import: a function's handler, or boto3 alone."""

    name: str
    module: str
    paths: tuple[str, ...]
    environment: Mapping[str, str]


@dataclass(frozen=True)
class Timing:
    cpu: float
    wall: float


@dataclass(frozen=True)
class Measured:
    imported: Timing
    set_up: Timing


def excluded(relative: Path) -> bool:
    """Whether a CDK asset leaves this file out: ASSET_EXCLUDES are patterns such as `**/__pycache__`."""
    return any(fnmatch(part, pattern.removeprefix("**/")) for pattern in ASSET_EXCLUDES for part in relative.parts)


def asset_files(folder: Path) -> Iterable[Path]:
    return (path for path in folder.rglob("*") if path.is_file() and not excluded(path.relative_to(folder)))


def asset_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in asset_files(folder))


def copy_asset(source: Path, destination: Path) -> Path:
    """A copy of what the asset holds: no bytecode, so every import compiles from source, as in Lambda."""
    for path in asset_files(source):
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return destination


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        sys.exit("uv is not on the PATH: run this with `uv run --frozen python -m bench.cold_start`")
    return found


def ensure_layer(layer_dir: Path) -> None:
    if (layer_dir / "python").is_dir():
        return
    print(f"<!-- no dependencies layer in {layer_dir}: building it with `make layer` (needs PyPI) -->", flush=True)
    if subprocess.run(["make", "layer"], cwd=PROJECT_ROOT, check=False).returncode != 0:  # noqa: S607 - as documented
        sys.exit("`make layer` failed: build the dependencies layer with it, then run this again")


def host_dependencies() -> Path:
    """The lock file's runtime dependencies (the layer's and those the runtime provides) for this machine's
    interpreter, not byte-compiled; installed again only when the lock's export changes."""
    requirements = subprocess.run(  # noqa: S603 - uv, with arguments we chose
        [uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "requirements-txt", "--quiet"],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tag = f"{platform.machine()}-py{sys.version_info.major}.{sys.version_info.minor}"
    folder = HOST_DEPENDENCIES_DIR / tag
    stamp = folder / "requirements.txt"
    if stamp.is_file() and stamp.read_text() == requirements:
        return folder / "python"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "requested.txt").write_text(requirements)
    install = ["pip", "install", "--quiet", "--require-hashes", "--no-deps", "--only-binary", ":all:"]
    subprocess.run(  # noqa: S603 - uv, with arguments we chose
        [
            uv(),
            *install,
            "--python",
            sys.executable,
            "--target",
            str(folder / "python"),
            "-r",
            str(folder / "requested.txt"),
        ],
        cwd=PROJECT_ROOT,
        check=True,
    )
    stamp.write_text(requirements)
    return folder / "python"


def compiled(folder: Path) -> Path:
    """Byte-compiles `folder` in place as a layer could ship it: unchecked-hash pycs, valid whatever the dates a
    zip gives the sources (a timestamp pyc no longer matches them, and /opt is read-only, so it would be ignored)."""
    subprocess.run(  # noqa: S603 - this interpreter's compileall, with arguments we chose
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return folder


def compiled_dependencies(source: Path) -> Path:
    """A byte-compiled copy of the host dependencies, made again when they are."""
    copy = source.parent.with_name(source.parent.name + "-bytecode") / "python"
    stamp = source.parent / "requirements.txt"
    copy_stamp = copy.parent / "requirements.txt"
    if copy_stamp.is_file() and copy_stamp.read_text() == stamp.read_text():
        return copy
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(source, copy)
    compiled(copy)
    shutil.copy2(stamp, copy_stamp)
    return copy


def measure(target: Target, importtime: bool = False) -> tuple[Measured, str]:
    flags = ["-S", "-B"] + (["-X", "importtime"] if importtime else [])
    done = subprocess.run(  # noqa: S603 - this interpreter, running our own probe
        [sys.executable, *flags, "-c", PROBE.format(paths=list(target.paths), module=target.module)],
        env=dict(target.environment),
        cwd=target.paths[0],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"importing {target.module} for {target.name} failed:\n{done.stderr[-4000:]}")
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return Measured(Timing(*times["import"]), Timing(*times["set_up"])), done.stderr


def self_time_by_package(importtime: str) -> Counter[str]:
    """`-X importtime`'s self times (each module's own, without what it imports), summed by top-level package."""
    totals: Counter[str] = Counter()
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        totals[name.strip().split(".")[0]] += int(own)
    return totals


def median(samples: list[Measured], phase: str, clock: str) -> float:
    return float(statistics.median(getattr(getattr(sample, phase), clock) for sample in samples))


def import_table(results: dict[str, list[Measured]], baseline: str) -> list[str]:
    boto3_cpu = median(results[baseline], "imported", "cpu")
    lines = [
        "| | import, CPU s | ratio to `import boto3` | import, wall s | import + set-up, CPU s | ratio to `import boto3` |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, samples in results.items():
        imported, set_up = median(samples, "imported", "cpu"), median(samples, "set_up", "cpu")
        ratio = imported / boto3_cpu
        mark = "" if name == baseline or ratio <= TARGET_IMPORT_RATIO else " ✗"
        lines.append(
            f"| {name} | {imported:.3f} | {ratio:.2f}{mark} | {median(samples, 'imported', 'wall'):.3f} "
            f"| {set_up:.3f} | {set_up / boto3_cpu:.2f} |"
        )
    return lines


def size_table(
    functions: Iterable[system.Function], layer_dir: Path, shared_dir: Path, functions_dir: Path
) -> list[str]:
    dependencies, shared = asset_bytes(layer_dir), asset_bytes(shared_dir)
    lines = [
        "| function | dependencies layer, MB | shared layer, MB | code, MB | total, MB | ratio to 25 MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for function in functions:
        code = asset_bytes(functions_dir / function.source_dir)
        total = (dependencies + shared + code) / MB
        mark = "" if total <= TARGET_ARTIFACT_MB else " ✗"
        lines.append(
            f"| {function.name} | {dependencies / MB:.2f} | {shared / MB:.2f} | {code / MB:.3f} | {total:.2f} "
            f"| {total / TARGET_ARTIFACT_MB:.2f}{mark} |"
        )
    packages: Counter[str] = Counter()
    python = layer_dir / "python"
    for path in asset_files(python):
        packages[path.relative_to(python).parts[0]] += path.stat().st_size
    largest = ", ".join(f"{name} {size / MB:.1f}" for name, size in packages.most_common(8))
    return [*lines, "", f"Largest in the dependencies layer (MB): {largest}."]


def breakdown_table(importtimes: dict[str, str]) -> list[str]:
    lines = [
        "| | own import time by top-level package, wall ms (one `-X importtime` run of import and set-up) |",
        "|---|---|",
    ]
    for name, importtime in importtimes.items():
        top = ", ".join(
            f"{package} {us / 1000:.0f}" for package, us in self_time_by_package(importtime).most_common(10)
        )
        lines.append(f"| {name} | {top} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=5, help="fresh interpreters per import, the median kept (default 5)"
    )
    parser.add_argument(
        "--function", action="append", choices=[function.name for function in system.FUNCTIONS], help="only these"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also one `-X importtime` run of import and set-up per handler"
    )
    parser.add_argument(
        "--bytecode", action="store_true", help="as if the layers and code shipped bytecode (they do not today)"
    )
    parser.add_argument(
        "--layer-dir", type=Path, default=DEFAULT_DEPENDENCIES_LAYER_DIR, help="the built dependencies layer"
    )
    parser.add_argument("--shared-dir", type=Path, default=SHARED_LAYER_DIR, help="the shared layer, to try a copy")
    parser.add_argument("--functions-dir", type=Path, default=PROJECT_ROOT / "functions", help="likewise the code")
    args = parser.parse_args(argv)
    functions = [f for f in system.FUNCTIONS if not args.function or f.name in args.function]

    ensure_layer(args.layer_dir)
    dependencies = host_dependencies()
    ship = compiled if args.bytecode else (lambda folder: folder)
    if args.bytecode:
        dependencies = compiled_dependencies(dependencies)
    baseline = "`import boto3`"
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        shared = str(ship(copy_asset(args.shared_dir / "python", Path(scratch) / "opt" / "python")))
        targets = [Target(baseline, "boto3", (str(dependencies),), LAMBDA_ENVIRONMENT)]
        for function in functions:
            task = ship(
                copy_asset(args.functions_dir / function.source_dir, Path(scratch) / "task" / function.source_dir)
            )
            environment = {
                **LAMBDA_ENVIRONMENT,
                **environment_of(function, RESOURCES),
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "LAMBDA_TASK_ROOT": str(task),
            }
            targets.append(Target(function.name, HANDLER_MODULE, (str(task), shared, str(dependencies)), environment))
        results: dict[str, list[Measured]] = {target.name: [] for target in targets}
        for _ in range(args.repeat):
            for target in targets:
                results[target.name].append(measure(target)[0])
        importtimes = {t.name: measure(t, importtime=True)[1] for t in targets[1:]} if args.breakdown else {}

    print("# Cold starts\n")
    print(
        f"Python {platform.python_version()} on {platform.machine()} (Lambda: {RUNTIME.name} on arm64), "
        f"{'from unchecked-hash bytecode (--bytecode)' if args.bytecode else 'from source'}, "
        f"median of {args.repeat} fresh interpreters. CPU seconds of the importing process, which a busy machine "
        "disturbs far less than wall time. **import** is the handler module's import, as Lambda's init runs it; "
        "**import + set-up** adds building what the module builds when first invoked (its settings, use cases and "
        "clients), before its first AWS request: what an import defers, the first request still pays.\n"
    )
    print(f"## Cold import against `import boto3` (goal: at most {TARGET_IMPORT_RATIO} times)\n")
    print("\n".join(import_table(results, baseline)))
    print(f"\n## What each function deploys, unzipped (goal: at most {TARGET_ARTIFACT_MB:.0f} MB)\n")
    print(
        f"The dependencies layer as `make layer` built it ({args.layer_dir.relative_to(PROJECT_ROOT)}), the shared "
        "layer and the function's code, without what the assets exclude; file bytes, 1 MB = 2^20 bytes.\n"
    )
    print("\n".join(size_table(functions, args.layer_dir, args.shared_dir, args.functions_dir)))
    if importtimes:
        print("\n## Where the time goes, import and set-up\n")
        print("\n".join(breakdown_table(importtimes)))


if __name__ == "__main__":
    main()
