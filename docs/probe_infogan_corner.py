"""Measure the grey lower-left square of models/infogan/1 (docs/training.md,
"InfoGAN: the grey square next to some ones").

    PYTHONPATH=sdk:serving:training python docs/probe_infogan_corner.py [MODEL_DIR]

Samples 2,000 images per digit as the server does (seed 0), counts the
images whose lower-left 8x8 pixels average above -0.5, checks ONNX Runtime
against eager PyTorch (weights from model.ts), and prints the first fully
connected layer's per-category template norms at the 7x7 cells and what
reaches the output layer in the square.
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from gan_contract.manifest import load_manifest
from gan_contract.request import SampleSpec, model_inputs, plan_request
from gan_training.models import GeneratorConfig, build_generator

N = 2000
CORNER = (slice(20, 28), slice(0, 8))


def corner_share(images: np.ndarray) -> np.ndarray:
    """Per image (N, 1, 28, 28): whether the lower-left 8x8 pixels average above -0.5."""
    return images[:, 0, CORNER[0], CORNER[1]].mean(axis=(1, 2)) > -0.5


def main(model_dir: str = "models/infogan/1") -> None:
    torch.set_num_threads(1)
    manifest = load_manifest(model_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])
    generator = build_generator(GeneratorConfig(**_generator_config(manifest))).eval()
    generator.load_state_dict(torch.jit.load(f"{model_dir}/model.ts").state_dict())
    worst = 0.0
    for digit in range(10):
        feeds, _ = model_inputs(manifest, plan_request(manifest, SampleSpec(count=N, seed=0, digit=digit)), 0, N)
        images = session.run(["images"], feeds)[0]
        with torch.no_grad():
            eager = generator(*(torch.from_numpy(feeds[k]) for k in ("z", "category", "continuous"))).numpy()
        worst = max(worst, float(np.abs(images - eager).max()))
        bad = corner_share(images)
        fifths = np.clip(((feeds["continuous"] + 1) / 2 * 5).astype(int), 0, 4)
        by_code = [[round(float(bad[fifths[:, j] == f].mean()), 3) for f in range(5)] for j in range(2)]
        print(f"digit {digit}: grey corner in {bad.mean():.3f} of {N}; by fifths of continuous code 1, 2: {by_code}")
    print(f"ONNX Runtime vs eager PyTorch: max |difference| {worst:.2g}")
    net = generator.net
    template = net.fc.weight.detach().view(2 * net.width, 7, 7, -1)
    z_dim = manifest.latent.dim
    for k in (0, 1, 7):
        norms = template[..., z_dim + k].norm(dim=0)
        cells = f"(6, 0) {norms[6, 0]:.2f}, (6, 1) {norms[6, 1]:.2f}"
        print(f"category {k}: template norm at cells {cells}, mean over the 7x7 cells {norms.mean():.2f}")
    print(f"output bias {net.up2.bias.item():.4f}: tanh {np.tanh(net.up2.bias.item()):.4f}")
    gen = torch.Generator().manual_seed(0)
    z, c = torch.randn(N, z_dim, generator=gen), torch.rand(N, 2, generator=gen) * 2 - 1
    with torch.no_grad():
        for k in (1, 7):
            code = torch.cat([z, F.one_hot(torch.full((N,), k), 10).float(), c], 1)
            h1 = F.relu(net.bn1(net.up1(F.relu(net.bn0(net.fc(net.mlp(code)).view(-1, 2 * net.width, 7, 7))))))
            terms = F.conv_transpose2d(h1, net.up2.weight.abs(), None, stride=2, padding=1)[:, 0, 22:28, 0:4]
            pre = net.up2(h1)[:, 0, 22:28, 0:4]
            alive = (h1[:, :, 12, 0:3] > 0).float().sum(1).mean()
            print(
                f"category {k}, pixels (22..27, 0..3): sum of |terms| {terms.mean():.2f}, pre-tanh {pre.mean():.2f}; "
                f"live 14x14 channels at row 12, columns 0..2: {alive:.1f} of {net.width}"
            )


def _generator_config(manifest) -> dict:
    cond = manifest.conditioning
    return {
        "conditioning": "infogan",
        "z_dim": manifest.latent.dim,
        "width": int(manifest.training["width"]),
        "num_categories": cond.num_categories,
        "num_continuous": cond.num_continuous,
    }


if __name__ == "__main__":
    main(*sys.argv[1:])
