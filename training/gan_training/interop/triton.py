"""Write a model version into a Triton Inference Server model repository.

    from gan_training.interop.triton import write_triton_repo
    write_triton_repo("models/cgan/1", "triton-models")

writes

    triton-models/cgan/config.pbtxt   platform onnxruntime_onnx, dynamic batching
    triton-models/cgan/1/model.onnx   the version's ONNX generator, byte for byte
    triton-models/cgan/manifest.json  the version's manifest (image range, classes, codes)
    triton-models/cgan/README.txt     how a client draws the latents

Triton runs the pure generator graph: no seeds, no digit mapping, float
output. Clients draw ``z`` (and the class / codes) themselves with
gan_contract.latents.draw_codes to get gan-server's images for a seed, and map
the float images to uint8 as gan-server does (README.txt). See
docs/deploy.md, "Triton Inference Server".
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gan_contract.manifest import MANIFEST_NAME, Manifest, TensorSpec, load_manifest
from gan_contract.request import num_classes

TRITON_DTYPES = {"float32": "TYPE_FP32", "int64": "TYPE_INT64"}
_ONNX_DTYPES = {"float32": 1, "int64": 7}  # onnx.TensorProto.FLOAT, INT64
INSTANCE_KINDS = ("KIND_AUTO", "KIND_GPU", "KIND_CPU")


class TritonExportError(ValueError):
    """The version cannot be served by Triton's ONNX Runtime backend as configured."""


def write_triton_repo(
    version_dir: Path | str,
    out_repo: Path | str,
    model_name: str | None = None,
    max_batch_size: int = 256,
    preferred_batch_sizes: tuple[int, ...] = (64, 256),
    max_queue_delay_us: int = 2000,
    *,
    instance_kind: str = "KIND_AUTO",
    instance_count: int = 1,
    triton_version: int = 1,
) -> Path:
    """Write ``<out_repo>/<model_name>/`` for Triton; return that directory.

    ``model_name`` defaults to the manifest's name. The ONNX file goes to
    ``<model_name>/<triton_version>/model.onnx`` (Triton versions are integers;
    1 by default). An existing config.pbtxt, README.txt, manifest.json and that
    version's model.onnx are replaced; other versions are left alone.
    """
    version_dir, out_repo = Path(version_dir), Path(out_repo)
    if max_batch_size < 1:
        raise TritonExportError(f"max_batch_size must be >= 1, got {max_batch_size}")
    preferred = tuple(int(b) for b in preferred_batch_sizes)
    bad = [b for b in preferred if not 1 <= b <= max_batch_size]
    if bad:
        raise TritonExportError(f"preferred batch sizes must be in [1, max_batch_size={max_batch_size}], got {bad}")
    if max_queue_delay_us < 0:
        raise TritonExportError(f"max_queue_delay_us must be >= 0, got {max_queue_delay_us}")
    if instance_kind not in INSTANCE_KINDS:
        raise TritonExportError(f"instance_kind must be one of {', '.join(INSTANCE_KINDS)}, got {instance_kind!r}")
    if instance_count < 1 or triton_version < 1:
        raise TritonExportError("instance_count and triton_version must be >= 1")

    manifest = load_manifest(version_dir)  # schema + sha256 of every file
    name = model_name or manifest.name
    if not name or "/" in name or name.startswith("."):
        raise TritonExportError(f"model name {name!r} must be a plain directory name")
    onnx_path = version_dir / manifest.files["onnx"].path
    check_onnx_graph(onnx_path, manifest)

    model_dir = out_repo / name
    (model_dir / str(triton_version)).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, model_dir / str(triton_version) / "model.onnx")
    shutil.copyfile(version_dir / MANIFEST_NAME, model_dir / MANIFEST_NAME)
    (model_dir / "config.pbtxt").write_text(
        config_pbtxt(manifest, name, max_batch_size, preferred, max_queue_delay_us, instance_kind, instance_count),
        encoding="utf-8",
    )
    (model_dir / "README.txt").write_text(readme(manifest, name), encoding="utf-8")
    return model_dir


# -- config.pbtxt -----------------------------------------------------------------------


def _tensor_block(t: TensorSpec, dims: tuple[int, ...]) -> str:
    lines = [
        "  {",
        f'    name: "{t.name}"',
        f"    data_type: {TRITON_DTYPES[t.dtype]}",
        f"    dims: [ {', '.join(str(d) for d in dims)} ]",
    ]
    if len(t.shape) == 1:
        # The graph takes (N,): Triton needs at least one non-batch dim, so the
        # client sends (N, 1) and Triton reshapes each item to a scalar.
        lines.append("    reshape: { shape: [ ] }")
    lines.append("  }")
    return "\n".join(lines)


def config_pbtxt(manifest: Manifest, name: str, max_batch_size: int, preferred: tuple[int, ...],
                 max_queue_delay_us: int, instance_kind: str = "KIND_AUTO", instance_count: int = 1) -> str:
    """The model configuration (protobuf text format of inference.ModelConfig)."""
    img = manifest.image
    inputs = ",\n".join(_tensor_block(t, tuple(t.shape[1:]) or (1,)) for t in manifest.inputs)
    output = _tensor_block(manifest.output, (img.channels, img.height, img.width))
    kind_note = {
        "KIND_AUTO": (
            "# KIND_AUTO: one instance on each GPU Triton sees, else on the CPU. To pin it,\n"
            "# use KIND_GPU (with gpus: [ 0 ]; fails to load without a GPU) or KIND_CPU."
        ),
        "KIND_GPU": "# KIND_GPU: fails to load where Triton sees no GPU; use KIND_CPU or KIND_AUTO there.",
        "KIND_CPU": "# KIND_CPU: ONNX Runtime's CPU execution provider even where GPUs exist.",
    }[instance_kind]
    return f"""# Triton model configuration for {manifest.name} version {manifest.version} ({manifest.variant}, {manifest.dataset}).
# Written by gan_training.interop.triton.write_triton_repo. Dims exclude the batch axis.
# Triton runs the pure generator: clients draw z (and the codes) themselves; see README.txt.
name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch_size}
input [
{inputs}
]
output [
{output}
]
# Output values lie in [{img.value_range[0]}, {img.value_range[1]}] (manifest image.value_range).
dynamic_batching {{
  preferred_batch_size: [ {', '.join(str(b) for b in preferred)} ]
  max_queue_delay_microseconds: {max_queue_delay_us}
}}
{kind_note}
instance_group [
  {{
    count: {instance_count}
    kind: {instance_kind}
  }}
]
"""


# -- the ONNX graph ------------------------------------------------------------------


def _dims(value_info) -> list[int | None]:
    """Dimensions of an ONNX value: an int, or None where it is symbolic/unknown."""
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def check_onnx_graph(path: Path, manifest: Manifest) -> None:
    """The graph's inputs/outputs must be what the manifest (and so config.pbtxt) says,
    with a dynamic batch axis, and its weights inside the file."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx comes with the train extra
        raise TritonExportError("checking the ONNX graph needs the onnx package (the train extra)") from exc
    model = onnx.load(str(path), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise TritonExportError(f"{path}: weights are stored outside the file; Triton gets model.onnx alone")
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = {v.name: v for v in model.graph.input if v.name not in initializers}
    graph_outputs = {v.name: v for v in model.graph.output}
    want = {t.name: t for t in manifest.inputs}
    if set(graph_inputs) != set(want):
        raise TritonExportError(f"{path}: graph inputs {sorted(graph_inputs)} != manifest inputs {sorted(want)}")
    wanted_out = manifest.output
    if wanted_out.name not in graph_outputs:
        raise TritonExportError(f"{path}: no graph output {wanted_out.name!r} (outputs: {sorted(graph_outputs)})")
    for t, v in [*((want[n], graph_inputs[n]) for n in want), (wanted_out, graph_outputs[wanted_out.name])]:
        elem = v.type.tensor_type.elem_type
        if elem != _ONNX_DTYPES[t.dtype]:
            raise TritonExportError(f"{path}: {t.name} has ONNX element type {elem}, manifest says {t.dtype}")
        dims = _dims(v)
        if len(dims) != len(t.shape):
            raise TritonExportError(f"{path}: {t.name} has rank {len(dims)}, manifest says shape {list(t.shape)}")
        if dims[0] is not None:
            raise TritonExportError(f"{path}: {t.name} has a fixed batch size {dims[0]}; Triton batching needs it dynamic")
        for got, exp in zip(dims[1:], t.shape[1:]):
            if got is not None and got != exp:
                raise TritonExportError(f"{path}: {t.name} has dims {dims}, manifest says {list(t.shape)}")


# -- README.txt -----------------------------------------------------------------------


# How each latent scheme (the manifest's latent_scheme; docs/api.md, Seeds) draws image i.
SCHEME_NOTES = {
    "philox4x64-per-image": [
        "Image i uses numpy's Philox generator keyed by the seed, counter (0, 0, first_index + i, 0),",
        "drawing z, then the categorical index, then the continuous codes (docs/model-repository.md).",
    ],
    "philox4x32-vectorised": [
        "Image i's codes are Philox4x32-10 words keyed by the seed and counted by (image, block,",
        "stream), computed for the whole batch at once (docs/api.md, Seeds).",
    ],
}


def readme(manifest: Manifest, name: str) -> str:
    cond = manifest.conditioning
    img = manifest.image
    low, high = img.value_range
    lines = [
        (f"{name}: {manifest.variant} generator ({manifest.dataset}), gan-platform model {manifest.name} "
         f"version {manifest.version}"),
        "",
        "Triton runs the pure generator graph (ONNX Runtime backend). Unlike gan-server it",
        "takes no seed: the client draws the latent codes. To get exactly gan-server's image i",
        "for seed s, draw them with the platform's seed scheme (pip install gan-platform;",
        "gan_contract.latents needs numpy only):",
        "",
        "    from gan_contract.latents import draw",
        f'    codes = draw("{manifest.latent_scheme}", seed, first_index, n, dim={manifest.latent.dim},',
        f"                 num_categories={num_classes(manifest.conditioning)}, num_continuous={cond.num_continuous},",
        f"                 continuous_range={tuple(cond.continuous_range)})",
        "",
        *SCHEME_NOTES[manifest.latent_scheme],
        "Always pass all the arguments above: they decide how many numbers each image draws.",
        "",
        "Inputs (batch axis first, up to max_batch_size rows per request):",
        "",
    ]
    lines.append(f"    z           FP32  (N, {manifest.latent.dim})  codes.z")
    if cond.kind == "class":
        lines += [
            "    label       INT64 (N, 1)   class index; codes.category, or a fixed class for all images",
            f"                class names by index: {', '.join(cond.class_names)}",
            "                digit d -> index class_names.index(str(d))",
        ]
    elif cond.kind == "infogan":
        lines.append(f"    category    FP32  (N, {cond.num_categories})  one-hot: numpy.eye({cond.num_categories}, "
                     "dtype=numpy.float32)[codes.category] (or a fixed category)")
        if cond.category_to_digit:
            lines.append(f"                digit d -> category category_to_digit.index(d), category_to_digit = "
                         f"{list(cond.category_to_digit)}")
        lines.append(f"    continuous  FP32  (N, {cond.num_continuous})  codes.continuous, or fixed values in "
                     f"{list(cond.continuous_range)}")
    lines += [
        "",
        (f"Output: {manifest.output.name} FP32 (N, {img.channels}, {img.height}, {img.width}), values in "
         f"[{low}, {high}]. gan-server's uint8 images:"),
        "",
        f"    u8 = numpy.clip(numpy.rint((x - ({low})) * numpy.float32(255.0 / ({high} - ({low})))), 0, 255)",
        "    u8 = u8.astype(numpy.uint8).transpose(0, 2, 3, 1)      # NHWC",
        "",
        "computed in float32 (as gan_contract.images.to_uint8). ONNX Runtime on another device or",
        "build may round a few values differently from gan-server's CPU build (one level, rarely).",
        "manifest.json beside this file is the model's full manifest.",
        "",
    ]
    return "\n".join(lines)
