"""The contract between training, serving and clients.

Everything two parts of the platform must agree on is defined here, once:

- ``manifest``: the model-repository manifest (schema, validation, files);
- ``latents``: the seed scheme, seed → latent codes;
- ``proto``: the generated gan.v1 protobuf and gRPC modules.

Standard library and numpy only, so the SDK installs without torch or
onnxruntime and a TorchServe archive can carry the package as it is.
"""
