"""The contract between training, serving and clients.

Everything two parts of the platform must agree on is defined here, once:

- ``manifest``: the model-repository manifest (schema, validation, files);
- ``latents``: the seed scheme, seed → latent codes;
- ``request``: a sampling request, planned and turned into model inputs;
- ``images``, ``png``, ``provenance``: served pixels, grids, the PNG and
  .npy encoders and the PNG text chunks (the SDK and the server's image URLs
  write the same bytes);
- ``interp``: latent interpolation (SDK ``interpolate`` and the server's strips);
- ``proto``: the generated gan.v1 protobuf and gRPC modules.

Standard library and numpy only (``png`` imports Pillow when called), so
the SDK installs without torch or onnxruntime and a TorchServe archive can
carry the package as it is.
"""
