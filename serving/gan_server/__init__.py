"""gan_server: the asyncio gRPC service that samples images from GAN generators.

Start it with ``gan-server --models models`` (see :mod:`gan_server.cli`).
Importing this package loads neither onnxruntime nor torch; backends import
their runtime when they are created.
"""

__all__: list[str] = []
