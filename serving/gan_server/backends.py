"""Inference backends: run a generator graph on named numpy inputs.

``onnx`` (ONNX Runtime; the CUDA execution provider with ``device="cuda"``) is
the default. ``torchscript`` imports torch only when chosen. Asking for CUDA
where none is present is a start-up error, never a silent CPU fallback.

``torchscript`` also keeps the whole sampling loop on its device
(:meth:`TorchScriptBackend.sample`): latent codes drawn there, inputs built
there, the generator run in the chosen precision, pixels converted to uint8
there; only the uint8 images (and what a request asked for) reach the host.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from gan_contract.images import to_uint8_torch
from gan_contract.request import batch_inputs

if TYPE_CHECKING:
    from gan_contract.manifest import Manifest
    from gan_contract.request import Plan

BACKENDS = ("onnx", "torchscript")
DEVICES = ("cpu", "cuda")
# fp32: float32 everywhere (on CUDA without TF32, so that CUDA and CPU pixels agree
# within docs/deploy.md's tolerance); tf32: float32 with TF32 convolutions and
# matmuls on CUDA; fp16 / bf16: torch.autocast to that type.
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


class BackendError(RuntimeError):
    """A backend that cannot be created (missing runtime, no CUDA, bad file)."""


class Backend(Protocol):
    name: str

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Return the generator's float32 (N, C, H, W) output."""
        ...


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, device: str = "cpu", threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendError("the onnx backend needs onnxruntime: pip install 'gan-platform[serve]'") from exc
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # Idle intra-op threads would otherwise spin and take CPU from the
        # event loop and from other models' runs between requests.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError(
                    "--device cuda: ONNX Runtime has no CUDAExecutionProvider here "
                    f"(available: {', '.join(ort.get_available_providers())}); "
                    "install onnxruntime-gpu on a machine with an NVIDIA GPU"
                )
            providers = ["CUDAExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise BackendError(f"{path}: ONNX Runtime cannot load it: {exc}") from exc
        if device == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise BackendError(f"{path}: the CUDA execution provider failed to initialise")
        self.output_name = self.session.get_outputs()[0].name

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        (out,) = self.session.run([self.output_name], inputs)
        return out


def set_conv_tf32(module, allow: bool) -> int:
    """Set cuDNN's TF32 switch of every traced convolution in ``module``'s graphs to ``allow``.

    ``torch.jit.trace`` records a convolution as ``aten::_convolution`` with the
    tracing process's ``allow_tf32`` as a constant (on by default), which would
    override the process-wide setting: fp32 would run in TF32 on CUDA. Call it
    before the module first runs. Returns how many convolutions it set (CPU
    kernels ignore the switch).
    """
    changed = 0
    for sub in module.modules():
        try:
            graph = sub.graph
        except (AttributeError, RuntimeError):  # a submodule without forward
            continue
        for node in graph.findAllNodes("aten::_convolution"):
            if len(list(node.inputs())) != 13:  # not the signature whose last argument is allow_tf32
                continue
            with graph.insert_point_guard(node):
                flag = graph.insertConstant(allow)
            node.replaceInput(12, flag)
            changed += 1
    return changed


class TorchScriptBackend:
    name = "torchscript"

    def __init__(
        self, path: Path, input_names: list[str], device: str = "cpu", threads: int = 0, precision: str = "fp32"
    ) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendError("the torchscript backend needs torch: pip install 'gan-platform[train]'") from exc
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("--device cuda: torch sees no CUDA device here")
        if precision not in PRECISIONS:
            raise BackendError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = torch.device(device)
        self.precision = precision
        self._autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        if self.device.type == "cuda":
            # One setting per process, as every model of a server has the same precision.
            torch.backends.cudnn.allow_tf32 = precision == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        try:
            self.module = torch.jit.load(str(path), map_location=self.device).eval()
        except Exception as exc:
            raise BackendError(f"{path}: torch.jit cannot load it: {exc}") from exc
        set_conv_tf32(self.module, precision == "tf32")
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the weights are in place before other streams read them
        self.input_names = input_names
        self._local = threading.local()  # each inference thread's CUDA stream

    def forward(self, feeds: dict):
        """The generator on named input tensors already on the device, in the chosen precision."""
        torch = self._torch
        args = [feeds[n] for n in self.input_names]
        with torch.inference_mode():
            if self._autocast_dtype is None:
                return self.module(*args)
            with torch.autocast(self.device.type, dtype=self._autocast_dtype):
                return self.module(*args)

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        out = self.forward({n: torch.from_numpy(inputs[n]).to(self.device) for n in self.input_names})
        return out.float().cpu().numpy()

    @contextlib.contextmanager
    def _stream(self) -> Iterator[object]:
        """On CUDA, this thread's own stream (runs of concurrent batches overlap); else nothing."""
        if self.device.type != "cuda":
            yield None
            return
        torch = self._torch
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = torch.cuda.Stream(self.device)
        with torch.cuda.stream(stream):
            yield stream

    def _to_host(self, tensor):
        """Start copying ``tensor`` to host memory (pinned, asynchronous on CUDA); numpy once synchronised."""
        if self.device.type != "cuda":
            return tensor
        host = self._torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        return host

    def sample(
        self, manifest: Manifest, chunks: Sequence[tuple[Plan, int, int]]
    ) -> tuple[np.ndarray, list[np.ndarray | None], np.ndarray | None]:
        """Planned chunks ``(plan, start, count)``, stacked in one run on the device.

        The codes are drawn on the device (the vectorised scheme; the per-image
        one is drawn by numpy and copied), the inputs built there by
        ``gan_contract.request.batch_inputs``, the output converted there by
        ``to_uint8_torch``. Returns the uint8 (N, H, W, C) images; each chunk's
        latents, or None where its request did not ask for them; and the (N,)
        classes, or None when none was drawn (every chunk fixed its class, or
        the model takes none), so that only these cross to the host.
        """
        torch = self._torch
        drawn_classes = manifest.conditioning.kind != "none" and any(p.fixed_class is None for p, _, _ in chunks)
        with torch.inference_mode(), self._stream() as stream:
            feeds, classes = batch_inputs(manifest, chunks, device=self.device)
            images = to_uint8_torch(self.forward(feeds), manifest.image.value_range)
            pending = {"images": self._to_host(images)}
            wanted, offset = [], 0
            for plan, _, count in chunks:
                if plan.spec.return_latents:
                    wanted.append((offset, count))
                offset += count
            if wanted:
                z = feeds["z"]
                if len(wanted) < len(chunks):
                    z = torch.cat([z[first : first + count] for first, count in wanted])
                pending["latents"] = self._to_host(z)
            if drawn_classes:
                pending["classes"] = self._to_host(classes)
            if stream is not None:
                stream.synchronize()
            host = {k: v.numpy() for k, v in pending.items()}
        latents: list[np.ndarray | None] = [None] * len(chunks)
        if wanted:
            at = 0
            for index, (plan, _, count) in enumerate(chunks):
                if plan.spec.return_latents:
                    latents[index] = host["latents"][at : at + count]
                    at += count
        return host["images"], latents, host.get("classes")
