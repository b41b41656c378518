"""Record the SHA-256 of served bytes for a fixed set of requests on every bundled model.

    python tests/golden/record.py            # rewrites tests/golden/served.json

The file is the reference that ``tests/test_golden_bytes.py`` compares the
server (gan.v1 and OIP) and the TorchServe handler against. Regenerate it
only for a change that is meant to change served bytes, and say so in the
commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.golden.cases import OUT, handler_digests, served_digests  # noqa: E402


def main() -> None:
    import tempfile

    from tests.conftest import BUNDLED, start_server, stop_server

    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(BUNDLED, Path(tmp) / "server.log")
        try:
            served = served_digests(srv.address, BUNDLED)
        finally:
            stop_server(srv)
        handler = handler_digests(BUNDLED, Path(tmp) / "staged")
    OUT.write_text(json.dumps({"served": served, "torchserve_handler": handler}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {len(served)} served, {len(handler)} handler digests")


if __name__ == "__main__":
    main()
