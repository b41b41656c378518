# syntax=docker/dockerfile:1
# gan-server, CPU image (ONNX Runtime CPU). The GPU image is Dockerfile.gpu.
#
#   docker build -t gan-server:0.1.0-cpu .
#   docker run --rm -p 50051:50051 -p 9090:9090 --read-only --tmpfs /tmp \
#     gan-server:0.1.0-cpu --metrics-port 9090
#
# The final stage holds the Python runtime, one virtualenv (the `serve` extra:
# no torch, no compilers) and the bundled models under /models. It runs as
# UID/GID 10001 and writes nothing outside /tmp, so it works with a read-only
# root filesystem. See docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: resolve and install into /opt/venv -------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the wheel build reads; .dockerignore keeps the rest out.
COPY pyproject.toml README.md constraints.txt ./
COPY sdk ./sdk
COPY serving ./serving
COPY training ./training
# A regular (non-editable) install: the venv must not point back into /src.
# pip compiles .pyc files here, so the read-only runtime never needs to.
RUN pip install -c constraints.txt ".[serve]" \
 && pip uninstall -y pip setuptools wheel \
 && gan-server --help > /dev/null \
 && python -c "import gan_server.server, gan_client, onnxruntime"

# ---- runtime ---------------------------------------------------------------
FROM ${PYTHON_IMAGE}

# A fixed numeric UID/GID so Kubernetes' runAsNonRoot/runAsUser can check it.
RUN groupadd --system --gid 10001 gan \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin gan

# The venv lives at the same path in both stages, so its interpreter symlink
# (/usr/local/bin/python3) resolves to the same base-image Python.
COPY --from=builder /opt/venv /opt/venv
# Models are baked in, owned by root and read-only to the server user; mount
# a volume over /models to serve others.
COPY models /models

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    TMPDIR=/tmp \
    HOME=/tmp

USER 10001:10001
WORKDIR /tmp
EXPOSE 50051 8080 9090

# For `docker run` only: Kubernetes ignores HEALTHCHECK and uses the native
# gRPC probes in k8s/base/deployment.yaml. grpc_health ships with the `serve`
# extra, so no grpc_health_probe binary is needed. It checks plaintext on
# $GAN_SERVER_PORT (default 50051); with --tls-cert it fails, use an
# orchestrator probe then. tests/k8s runs this exact command.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; ch = grpc.insecure_channel('127.0.0.1:' + os.environ.get('GAN_SERVER_PORT', '50051')); r = g.HealthStub(ch).Check(h.HealthCheckRequest(service=''), timeout=4); sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"]

# Extra arguments (docker run ... ARGS, Kubernetes `args`) are appended; for a
# repeated flag the last one wins, so they can override these defaults.
ENTRYPOINT ["gan-server", "--host", "0.0.0.0", "--models", "/models"]
