"""A throwaway model repository with a tiny BiGAN-style model: a linear
generator plus a linear encoder, built with the onnx package (no torch).

Bundled models with encoders come later; this one lets the SDK's encode /
reconstruct paths run against the real server now.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_encoder_model(root: Path, name: str = "tinybigan", latent_dim: int = 8, side: int = 28) -> Path:
    import onnx
    from gan_contract.manifest import (
        Conditioning,
        FileEntry,
        ImageSpec,
        LatentSpec,
        Manifest,
        TensorSpec,
        expected_inputs,
        sha256_file,
        write_manifest,
    )
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    pixels = side * side
    version_dir = root / name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)

    def save(path: Path, nodes: list, inputs: list, outputs: list, inits: list) -> None:
        model = helper.make_model(
            helper.make_graph(nodes, path.stem, inputs, outputs, inits), opset_imports=[helper.make_opsetid("", 17)]
        )
        model.ir_version = 8
        onnx.save(model, str(path))

    w_gen = (rng.normal(size=(latent_dim, pixels)) / np.sqrt(latent_dim)).astype(np.float32)
    save(
        version_dir / "model.onnx",
        [
            helper.make_node("MatMul", ["z", "W"], ["h"]),
            helper.make_node("Tanh", ["h"], ["t"]),
            helper.make_node("Reshape", ["t", "shape"], ["images"]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", latent_dim])],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 1, side, side])],
        [
            numpy_helper.from_array(w_gen, "W"),
            numpy_helper.from_array(np.array([-1, 1, side, side], np.int64), "shape"),
        ],
    )
    # encoder: least-squares inverse of the generator's linear part (up to tanh)
    w_enc = np.linalg.pinv(w_gen).astype(np.float32)
    save(
        version_dir / "encoder.onnx",
        [helper.make_node("Reshape", ["images", "flat"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["latents"])],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 1, side, side])],
        [helper.make_tensor_value_info("latents", TensorProto.FLOAT, ["N", latent_dim])],
        [numpy_helper.from_array(w_enc, "W"), numpy_helper.from_array(np.array([-1, pixels], np.int64), "flat")],
    )
    latent, cond = LatentSpec(latent_dim), Conditioning()
    write_manifest(
        version_dir,
        Manifest(
            name=name,
            version="1",
            variant="bigan",
            dataset="mnist",
            image=ImageSpec(side, side, 1),
            latent=latent,
            conditioning=cond,
            inputs=expected_inputs(latent, cond),
            output=TensorSpec("images", (-1, 1, side, side), "float32"),
            files={
                "onnx": FileEntry("model.onnx", sha256_file(version_dir / "model.onnx")),
                "encoder_onnx": FileEntry("encoder.onnx", sha256_file(version_dir / "encoder.onnx")),
            },
        ),
    )
    return root
