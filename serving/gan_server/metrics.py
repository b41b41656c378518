"""Prometheus metrics, served over HTTP with ``--metrics-port``.

Series (all prefixed ``gan_``):

- ``requests_total{method,model,code}``: finished RPCs by status code;
- ``request_latency_seconds{method,model}``: RPC latency histogram;
- ``queue_seconds{model}``: time a chunk waited for its backend run;
- ``batch_size{model}``: images per backend run (dynamic batching at work);
- ``images_generated_total{model}``;
- ``models_loaded``: loaded model versions.

The ``model`` label only takes names of loaded models ("unknown" otherwise),
so callers cannot inflate the number of series.

With ``--processes N`` each process records into prometheus-client's
multiprocess files (``PROMETHEUS_MULTIPROC_DIR``) and the supervising process
serves their sum (:func:`multiprocess_registry`): counters and histograms add
up; ``models_loaded`` is the smallest count among the live processes. The labelled children
are looked up once per label set and kept, so an RPC costs no label lookups.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .sampling import LoadedModel

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("gan_requests", "Finished RPCs.", ["method", "model", "code"], registry=r)
        self.latency = Histogram(
            "gan_request_latency_seconds", "RPC latency.", ["method", "model"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue = Histogram(
            "gan_queue_seconds",
            "Time a chunk waited for its backend run.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "gan_batch_size", "Images per backend run.", ["model"], buckets=_BATCH_BUCKETS, registry=r
        )
        self.images = Counter("gan_images_generated", "Images generated.", ["model"], registry=r)
        self.models_loaded = Gauge(
            "gan_models_loaded", "Loaded model versions.", registry=r, multiprocess_mode="livemin"
        )
        # Labelled children by label values; the label sets are bounded (see above).
        self._rpc: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._batch: dict[str, tuple[Any, Any, Any]] = {}

    def observe_batch(self, model: LoadedModel, size: int, queue_seconds: list[float]) -> None:
        children = self._batch.get(model.name)
        if children is None:
            name = model.name
            children = self._batch[name] = (self.batch.labels(name), self.images.labels(name), self.queue.labels(name))
        batch, images, queue = children
        batch.observe(size)
        images.inc(size)
        for q in queue_seconds:
            queue.observe(q)

    def observe_rpc(self, method: str, model: str, code: str, seconds: float) -> None:
        key = (method, model, code)
        children = self._rpc.get(key)
        if children is None:
            children = self._rpc[key] = (self.requests.labels(method, model, code), self.latency.labels(method, model))
        children[0].inc()
        children[1].observe(seconds)

    def serve_http(self, host: str, port: int) -> int:
        """Start the /metrics endpoint in a daemon thread; return the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_address[1])


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry that reads (and sums) what the processes wrote under ``path``."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def serve_registry_http(registry: CollectorRegistry, host: str, port: int) -> int:
    """Serve ``registry`` on /metrics in a daemon thread; return the bound port."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_address[1])
