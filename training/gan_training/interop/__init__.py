"""Interoperability with other model servers.

- :func:`gan_training.interop.torchserve.build_mar`: a TorchServe model archive
  (TorchScript generator + handler + the server's seed code).
- :func:`gan_training.interop.triton.write_triton_repo`: a Triton Inference
  Server model repository entry (ONNX Runtime backend, dynamic batching).

Both read a model version directory (``models/<name>/<version>``). Neither
module imports torch; the TorchServe one needs ``torch-model-archiver``
installed when an archive is built. See docs/deploy.md.
"""
