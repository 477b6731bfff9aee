"""The two layers every function carries: our shared code, and the third-party dependencies."""

from pathlib import Path

from aws_cdk import SymlinkFollowMode
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.standard_function import ARCHITECTURE, ASSET_EXCLUDES, RUNTIME


class MissingDependenciesLayerError(FileNotFoundError):
    def __init__(self, folder: Path) -> None:
        super().__init__(
            f"No dependencies layer in {folder} (expected {folder / 'python'}). "
            "Run `make layer` to build it from uv.lock for arm64 Lambda, "
            "or pass `-c dependenciesLayerDir=<folder holding python/>`."
        )


class Layers(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, shared_dir: Path, dependencies_dir: Path) -> None:
        super().__init__(scope, construct_id)
        # Checked here because an empty asset would deploy, and every function would then fail on import.
        if not (dependencies_dir / "python").is_dir():
            raise MissingDependenciesLayerError(dependencies_dir)
        self.shared = self._layer("Shared", shared_dir, "vmx: the domain and adapters the handlers call")
        self.dependencies = self._layer(
            "Dependencies", dependencies_dir, "Third-party packages from uv.lock, built for arm64"
        )

    @property
    def all(self) -> tuple[lambda_.ILayerVersion, ...]:
        return (self.shared, self.dependencies)

    def _layer(self, construct_id: str, folder: Path, description: str) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            construct_id,
            # the shared layer links to docs/openapi.json: the layer holds the file itself
            code=lambda_.Code.from_asset(str(folder), exclude=ASSET_EXCLUDES, follow_symlinks=SymlinkFollowMode.ALWAYS),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=description,
        )
