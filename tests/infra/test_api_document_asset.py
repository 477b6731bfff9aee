"""The shared layer's asset holds the API's OpenAPI document itself, which GET /api/v1/openapi.json serves: in
the repository the layer only links to docs/openapi.json, and a link would not survive the upload."""

from infra.openapi import DOCUMENT_PATH
from tests.infra.synthesized import Synthesized


def test_the_shared_layer_asset_holds_the_document_as_a_file(synthesized: Synthesized) -> None:
    shipped = [
        path
        for path in synthesized.assembly_dir.glob("asset.*/python/vmx/openapi.json")
        if (path.parent / "wiring.py").exists()
    ]

    assert len(shipped) == 1
    assert not shipped[0].is_symlink()
    assert shipped[0].read_bytes() == DOCUMENT_PATH.read_bytes()
