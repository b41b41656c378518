"""Inference backends: run a generator graph on named numpy inputs.

``onnx`` (ONNX Runtime; the CUDA execution provider with ``device="cuda"``) is
the default. ``torchscript`` imports torch only when chosen. Asking for CUDA
where none is present is a start-up error, never a silent CPU fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

BACKENDS = ("onnx", "torchscript")
DEVICES = ("cpu", "cuda")


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


class TorchScriptBackend:
    name = "torchscript"

    def __init__(self, path: Path, input_names: list[str], device: str = "cpu", threads: int = 0) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendError("the torchscript backend needs torch: pip install 'gan-platform[train]'") from exc
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("--device cuda: torch sees no CUDA device here")
        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = torch.device(device)
        try:
            self.module = torch.jit.load(str(path), map_location=self.device).eval()
        except Exception as exc:
            raise BackendError(f"{path}: torch.jit cannot load it: {exc}") from exc
        self.input_names = input_names

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        args = [torch.from_numpy(inputs[n]).to(self.device) for n in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        return out.float().cpu().numpy()
