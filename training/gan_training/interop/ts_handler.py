r"""TorchServe handler for gan-platform generators (shipped inside the .mar).

Built into an archive by :func:`gan_training.interop.torchserve.build_mar`,
next to the TorchScript generator, the model's ``manifest.json`` and the
platform's contract package ``gan_contract/`` (manifest parsing, the seed
scheme, request planning, pixels and grids), so a request is validated and
its codes drawn by exactly the server's code: image ``i`` of seed ``s`` is
the same image here and from ``gan-server``. Only numpy, torch, Pillow (for
PNG) and the standard library are imported, all of which TorchServe's worker
has. TorchServe requires this module to define exactly one class.

Request: a JSON object (REST body, or the gRPC ``input["data"]`` /
``input["body"]`` bytes)::

    {"n": 8, "seed": 3, "digit": 7, "format": "raw"}

    n            images, 1..4096 (default 1)
    seed         0..2**64-1 (default 0); image i uses stream (seed, first_index + i)
    first_index  default 0
    digit        0..9   (class / InfoGAN models; at most one of digit, label, category)
    label        a class name from the manifest
    category     InfoGAN category index
    continuous   InfoGAN: one number per continuous code, for every image
    format       "png" (default): one grid PNG, images row-major in ceil(sqrt(n)) columns,
                                   2 px black padding (as gan-client's grids)
                 "raw": a NumPy .npy file holding uint8 (N, H, W, C) in C order; its
                        header carries dtype and shape, the bytes after it are the raw
                        NHWC pixels (``numpy.load(io.BytesIO(body))``)

Response headers (REST only; gRPC carries the body alone): ``X-GAN-Model``,
``X-GAN-Version``, ``X-GAN-Shape`` (``N,H,W,C``), ``X-GAN-Classes`` (comma
separated class index / InfoGAN category per image, -1 when unconditional).

A bad request fails with a message naming the field, worded as gan-server's
INVALID_ARGUMENT errors (``digit: must be in [0, 9], got 17``): REST status
400 with TorchServe's error JSON ``{"code": 400, "type": ..., "message": ...}``,
gRPC status INVALID_ARGUMENT. With TorchServe batching (``batch_size`` > 1) a
bad request that shares a batch with good ones fails alone: REST still gets
400 and ``{"code": 400, "type": "InvalidArgument", "message": ...}``, but
TorchServe's gRPC API drops per-request statuses, so a gRPC caller gets OK
with that JSON as the prediction. A good prediction starts with the PNG
(``\x89PNG``) or NPY (``\x93NUMPY``) magic, an error with ``{``.
"""

from __future__ import annotations

import io
import json
import logging
import os

import numpy as np
import torch
from gan_contract.errors import InvalidArgument
from gan_contract.images import make_grid, to_uint8
from gan_contract.manifest import MANIFEST_NAME, parse_manifest, sha256_file
from gan_contract.request import Plan, SampleSpec, model_inputs, plan_request, reported_classes
from ts.handler_utils.timer import timed
from ts.torch_handler.base_handler import BaseHandler
from ts.utils.util import PredictionException

log = logging.getLogger(__name__)

MAX_COUNT = 4096  # most images one request may ask for (gan-server's default --max-count)
MAX_BATCH = 256  # most images in one forward pass (gan-server's default --max-batch)
FORMATS = ("png", "raw")
FIELDS = ("n", "seed", "first_index", "digit", "label", "category", "continuous", "format")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_field(req: dict, name: str, default: int | None) -> int | None:
    value = req.get(name, default)
    if value is None:
        return None
    if not _is_int(value):
        raise InvalidArgument(name, f"must be an integer, got {json.dumps(value)}")
    return value


class GanHandler(BaseHandler):
    """Seeded sampling from a gan-platform generator (TorchScript)."""

    def initialize(self, context) -> None:
        properties = context.system_properties
        model_dir = properties.get("model_dir")
        self.manifest = context.manifest
        gpu_id = properties.get("gpu_id")
        if torch.cuda.is_available() and gpu_id is not None:
            self.map_location = "cuda"
            self.device = torch.device(f"cuda:{gpu_id}")
        else:
            self.map_location = "cpu"
            self.device = torch.device("cpu")

        manifest_path = os.path.join(model_dir, MANIFEST_NAME)
        with open(manifest_path, encoding="utf-8") as f:
            self.manifest_json = f.read()
        # Validated by the server's own parser; files are checked below (only the
        # TorchScript generator is in the archive).
        self.gan = parse_manifest(json.loads(self.manifest_json), manifest_path)
        entry = self.gan.files.get("torchscript")
        if entry is None:
            raise RuntimeError(f"{manifest_path}: files.torchscript is missing; the archive needs a TorchScript generator")
        self.model_pt_path = os.path.join(model_dir, self.manifest["model"]["serializedFile"])
        digest = sha256_file(self.model_pt_path)
        if digest != entry.sha256:
            raise RuntimeError(
                f"{self.model_pt_path} has sha256 {digest}, manifest.json says {entry.sha256} (corrupt archive?)"
            )
        self.model = torch.jit.load(self.model_pt_path, map_location=self.device).eval()
        self.input_names = [t.name for t in self.gan.inputs]
        cond = self.gan.conditioning
        # Warm up, and fail the load now rather than on the first request.
        plan = self._plan({"n": 1, "seed": 0, "format": "raw"})
        images = self._run(self._feeds(plan)[0])
        img = self.gan.image
        if images.shape != (1, img.height, img.width, img.channels):
            raise RuntimeError(
                f"the generator returns {images.shape[1:]} images, manifest.json says "
                f"{(img.height, img.width, img.channels)} (H, W, C)"
            )
        self.initialized = True
        log.info("gan handler ready: %s version %s (%s) on %s", self.gan.name, self.gan.version,
                 cond.kind, self.device)

    # -- request → plan (JSON types here; values by gan_contract.request) ------

    def _parse_body(self, row) -> dict:
        if isinstance(row, dict):
            if "body" in row:
                body = row["body"]
            elif "data" in row:
                body = row["data"]
            elif len(row) == 1:
                body = next(iter(row.values()))
            else:
                got = f"parts {', '.join(map(str, row))}" if row else "no body"
                raise InvalidArgument(
                    "request", f"expected a JSON object body (Content-Type: application/json), got {got}"
                )
        else:
            body = row
        if isinstance(body, (bytes, bytearray)):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidArgument("request", "the body is not UTF-8 JSON") from None
        if isinstance(body, str):
            try:
                body = json.loads(body) if body.strip() else {}
            except json.JSONDecodeError as exc:
                raise InvalidArgument(
                    "request", f"the body is not valid JSON ({exc.msg} at line {exc.lineno})"
                ) from None
        if not isinstance(body, dict):
            raise InvalidArgument("request", f"the body must be a JSON object, got {type(body).__name__}")
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise InvalidArgument(unknown[0], f"unknown field; known: {', '.join(FIELDS)}")
        return body

    def _plan(self, req: dict) -> dict:
        m = self.gan
        count = _int_field(req, "n", 1)
        if count < 1:
            raise InvalidArgument("n", f"must be at least 1, got {count}")
        if count > MAX_COUNT:
            raise InvalidArgument("n", f"{count} exceeds this handler's limit of {MAX_COUNT} images per request")
        seed = _int_field(req, "seed", 0)
        first = _int_field(req, "first_index", 0)
        digit = _int_field(req, "digit", None)
        category = _int_field(req, "category", None)
        label = req.get("label")
        if label is not None and not isinstance(label, str):
            raise InvalidArgument("label", f"must be a string, got {json.dumps(label)}")
        continuous = req.get("continuous") or ()
        if continuous and (
            not isinstance(continuous, list)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in continuous)
        ):
            raise InvalidArgument("continuous", "must be a list of numbers")
        spec = SampleSpec(
            count=count,
            seed=seed,
            digit=digit,
            label=label,
            category=category,
            continuous=tuple(float(v) for v in continuous),
            first_index=first,
        )
        plan = plan_request(m, spec)
        fmt = req.get("format", "png")
        if fmt not in FORMATS:
            raise InvalidArgument("format", f"must be one of {', '.join(FORMATS)}, got {json.dumps(fmt)}")
        if fmt == "png" and m.image.channels not in (1, 3, 4):
            raise InvalidArgument(
                "format", f"png needs 1, 3 or 4 channels, model {m.name!r} has {m.image.channels}; use raw"
            )
        return {"plan": plan, "count": count, "format": fmt}

    # -- plan → graph inputs (gan_contract.request.model_inputs) ----------------

    def _feeds(self, plan: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
        p: Plan = plan["plan"]
        feeds, classes = model_inputs(self.gan, p, 0, plan["count"])
        return feeds, reported_classes(self.gan, classes)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Graph inputs → uint8 (N, H, W, C), in forward passes of at most MAX_BATCH images."""
        count = feeds["z"].shape[0]
        parts = []
        with torch.inference_mode():
            for start in range(0, count, MAX_BATCH):
                args = [torch.from_numpy(np.ascontiguousarray(feeds[n][start : start + MAX_BATCH])).to(self.device)
                        for n in self.input_names]
                parts.append(self.model(*args).float().cpu().numpy())
        return to_uint8(np.concatenate(parts), self.gan.image.value_range)

    # -- the BaseHandler pipeline (handle() calls these) -----------------------

    @timed
    def preprocess(self, data):
        """Each request → a plan dict, or the InvalidArgument naming its field, kept in its slot."""
        out = []
        for row in data:
            try:
                plan = self._plan(self._parse_body(row))
                plan["feeds"], plan["classes"] = self._feeds(plan)
                out.append(plan)
            except InvalidArgument as exc:
                out.append(exc)
        if len(out) == 1 and isinstance(out[0], InvalidArgument):
            # A lone request (always so without TorchServe batching): fail the whole
            # job, so that the gRPC API answers INVALID_ARGUMENT too. TorchServe's
            # gRPC API ignores the per-request statuses set in postprocess().
            raise PredictionException(str(out[0]), 400)
        return out

    @timed
    def inference(self, data, *args, **kwargs):
        """Run every valid request of the TorchServe batch in shared forward passes."""
        plans = [p for p in data if isinstance(p, dict)]
        if plans:
            merged = {n: np.concatenate([p["feeds"][n] for p in plans]) for n in self.input_names}
            images = self._run(merged)
            start = 0
            for p in plans:
                p["images"] = images[start : start + p["count"]]
                start += p["count"]
        return data

    @timed
    def postprocess(self, data):
        out = []
        for idx, item in enumerate(data):
            if isinstance(item, InvalidArgument):
                message = str(item)
                self._set_status(idx, 400, "Bad Request")
                self._set_header(idx, "content-type", "application/json")
                out.append(json.dumps({"code": 400, "type": "InvalidArgument", "message": message}))
                continue
            images = item["images"]
            self._set_header(idx, "X-GAN-Model", self.gan.name)
            self._set_header(idx, "X-GAN-Version", self.gan.version)
            self._set_header(idx, "X-GAN-Shape", ",".join(str(d) for d in images.shape))
            self._set_header(idx, "X-GAN-Classes", ",".join(str(int(c)) for c in item["classes"]))
            if item["format"] == "raw":
                buf = io.BytesIO()
                np.save(buf, images, allow_pickle=False)
                self._set_header(idx, "content-type", "application/x-npy")
                out.append(buf.getvalue())
            else:
                out.append(self._png(make_grid(images)))
                self._set_header(idx, "content-type", "image/png")
        return out

    def describe_handle(self):
        """``GET /models/<name>?customized=true`` → the model's manifest.json."""
        return self.manifest_json

    # -- helpers ----------------------------------------------------------------

    @staticmethod
    def _png(grid: np.ndarray) -> bytes:
        from PIL import Image

        # uint8 (H, W) → mode L, (H, W, 3) → RGB
        image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()

    def _set_status(self, idx: int, code: int, phrase: str) -> None:
        if self.context is not None and getattr(self.context, "request_processor", None):
            self.context.set_response_status(code, phrase, idx)

    def _set_header(self, idx: int, key: str, value: str) -> None:
        if self.context is not None and getattr(self.context, "request_processor", None):
            self.context.set_response_header(idx, key, value)

