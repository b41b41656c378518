"""Run by a compat venv's Python: use the installed SDK against a server, write a JSON report.

usage: python probe.py ADDRESS MODELS OUT_DIR [--triton]

Imports gan_client (and, with --triton, tritonclient.grpc in the same
process) while recording warnings, samples the golden requests of
``tests/golden/cases.py`` through ``gan_client.GanClient``, checks health, and
writes ``report.json`` plus the raw bytes of one sample (``infogan-7.bin``)
into OUT_DIR.
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = [
    "gan-platform",
    "protobuf",
    "grpcio",
    "grpcio-health-checking",
    "grpcio-reflection",
    "numpy",
    "pillow",
    "click",
    "onnxruntime",
    "tritonclient",
]
# The request whose bytes the tests compare directly (the golden cases compare digests).
RAW_REQUEST = {"model": "infogan", "n": 16, "seed": 7, "digit": 7}


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def main(argv: list[str]) -> int:
    address, models, out = argv[0], Path(argv[1]), Path(argv[2])
    triton = "--triton" in argv[3:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import gan_client
        from gan_contract.proto.gan.v1 import generator_pb2, generator_pb2_grpc  # noqa: F401

        if triton:
            import tritonclient.grpc as tc
    import google.protobuf
    import grpc

    report: dict = {
        "gan_client_file": gan_client.__file__,
        "protobuf_runtime": google.protobuf.__version__,
        "grpcio_runtime": grpc.__version__,
        "versions": {d: _version(d) for d in DISTRIBUTIONS},
        "import_warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }
    # The golden requests and how their digests are taken (numpy only); the SDK
    # itself stays the installed one, imported above.
    sys.path.insert(0, str(ROOT))
    from tests.golden.cases import served_digests

    report["digests"] = served_digests(address, models)
    with gan_client.GanClient(address) as client:
        report["health"] = client.health()
        report["health_generator"] = client.health("gan.v1.Generator")
        report["models"] = sorted(m.name for m in client.list_models())
        req = dict(RAW_REQUEST)
        result = client.sample(req.pop("model"), req.pop("n"), **req)
        (out / "infogan-7.bin").write_bytes(result.images.tobytes())
    if triton:
        oip = tc.InferenceServerClient(address)
        report["oip_live"] = oip.is_server_live()
        report["oip_dcgan_inputs"] = [t.name for t in oip.get_model_metadata("dcgan").inputs]
        oip.close()
    (out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
