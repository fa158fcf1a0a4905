"""Prometheus metrics from anything with a ``.stats``, through prometheus_client (the ``metrics`` extra).

``serve_metrics(rx, ("127.0.0.1", 9100))`` serves the counters of a
Receiver (ReceiverStats), a FrameAssembler (FrameStats), or several of them,
over HTTP at ``/metrics``. The counters are read from ``.stats`` at each
scrape, so nothing runs between scrapes and the receive path is untouched.
It binds loopback unless another address is named.
"""

from __future__ import annotations

from typing import Any, Iterable, Tuple

__all__ = ["serve_metrics", "MetricsServer", "COUNTERS"]

#: stats field -> (metric name without ``_total``, help). A source exports the fields it has.
COUNTERS = {
    "packets": ("fastnet_receiver_packets", "Datagrams taken from the socket into the ring."),
    "bytes": ("fastnet_receiver_bytes", "Bytes of those datagrams."),
    "kernel_drops": ("fastnet_receiver_kernel_drops", "Datagrams the kernel dropped for the socket."),
    "ring_overruns": ("fastnet_receiver_ring_overruns", "Datagrams discarded because the ring was full."),
    "frames_complete": ("fastnet_frames_complete", "Frames emitted with every packet."),
    "frames_incomplete": ("fastnet_frames_incomplete", "Frames emitted with packets missing."),
    "frames_missing": ("fastnet_frames_missing", "Frame ids between emitted frames never emitted."),
    "packets_placed": ("fastnet_packets_placed", "Datagrams placed into a frame."),
    "packets_late": ("fastnet_packets_late", "Datagrams for a frame already passed."),
    "packets_duplicate": ("fastnet_packets_duplicate", "Datagrams for a packet already placed."),
    "packets_rejected": ("fastnet_packets_rejected", "Datagrams of the wrong length or out of range."),
}


def _prometheus():
    try:
        import prometheus_client
    except ImportError:
        raise ImportError("serving metrics needs prometheus_client: pip install 'fastnet[metrics]'") from None
    return prometheus_client


def _fields(stats) -> dict:
    if isinstance(stats, dict):
        return stats
    if hasattr(stats, "as_dict"):
        return stats.as_dict()
    return {name: getattr(stats, name) for name in COUNTERS if hasattr(stats, name)}


class _StatsCollector:
    """A prometheus_client collector reading the sources' ``.stats`` when scraped."""

    def __init__(self, sources):
        self._sources = sources

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        values: dict = {}
        for source in self._sources:
            for name, value in _fields(source.stats).items():
                if name in COUNTERS and isinstance(value, int):
                    values[name] = values.get(name, 0) + value
        for name, value in values.items():
            metric, text = COUNTERS[name]
            yield CounterMetricFamily(metric, text, value=value)


class MetricsServer:
    """The HTTP server of serve_metrics; ``address`` is where it listens. Close it when done."""

    def __init__(self, server, thread):
        self._server = server
        self._thread = thread

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._server.server_address[:2]
        return host, port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<fastnet.MetricsServer http://{self.address[0]}:{self.address[1]}/metrics>"


def serve_metrics(source: Any, address: Tuple[str, int] = ("127.0.0.1", 9100)) -> MetricsServer:
    """Serve the counters of ``source`` (an object with ``.stats``, or a list of them) at ``address``.

    Port 0 takes a free port (``server.address`` says which). Counters a
    source lacks are left out; where two sources have one, they are added.
    """
    sources: Iterable[Any] = source if isinstance(source, (list, tuple)) else [source]
    sources = list(sources)
    for item in sources:
        if not hasattr(item, "stats"):
            raise TypeError(f"serve_metrics needs objects with a .stats, not {type(item).__name__}")
    try:
        host, port = address
    except (TypeError, ValueError):
        raise TypeError(f"address must be a (host, port) pair, not {address!r}") from None
    if (
        not isinstance(host, str)
        or isinstance(port, bool)
        or not isinstance(port, int)
        or not 0 <= port <= 65535
    ):
        raise ValueError(f"address must be a (host, port) pair with a port of 0 to 65535, got {address!r}")
    prometheus_client = _prometheus()
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_StatsCollector(sources))
    server, thread = prometheus_client.start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
