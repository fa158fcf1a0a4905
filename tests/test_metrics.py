"""serve_metrics: the counters of a Receiver and a FrameAssembler, scraped over HTTP on loopback."""

import time
import urllib.request

import pytest
from helpers import HANG_S

import fastnet
from fastnet import Field, FrameAssembler, FrameSpec
from fastnet.frames.synthetic import fill_batch

pytest.importorskip("prometheus_client")

SPEC = FrameSpec(8, 32, 4, counter=Field(0, 8))


def scrape(server) -> dict:
    host, port = server.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=HANG_S) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_of_an_assembler(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    batch = fastnet.Batch(64, 64)
    fill_batch(batch, SPEC, [(f, i) for f in range(5) for i in range(4) if (f, i) != (2, 1)])
    asm.add(batch)
    with fastnet.serve_metrics(asm, ("127.0.0.1", 0)) as server:
        assert server.address[0] == "127.0.0.1"
        values = scrape(server)
        assert values["fastnet_frames_complete_total"] == 2  # 0 and 1; 3 and 4 wait behind 2
        assert values["fastnet_packets_placed_total"] == 19
        asm.add(batch)  # all late now, or duplicates of frame 2's
        values = scrape(server)
        stats = asm.stats
        assert values["fastnet_packets_late_total"] == stats.packets_late
        assert values["fastnet_packets_duplicate_total"] == stats.packets_duplicate
        assert values["fastnet_packets_rejected_total"] == 0
        assert values["fastnet_frames_missing_total"] == stats.frames_missing
        assert values["fastnet_frames_incomplete_total"] == stats.frames_incomplete


def test_metrics_scraped_while_receiving(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    with (
        fastnet.Receiver(("127.0.0.1", 0), backend=backend, rcvbuf=4 << 20, batch_size=16) as rx,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx,
        fastnet.serve_metrics([rx, asm], ("127.0.0.1", 0)) as server,
    ):
        rx.start()
        batch = fastnet.Batch(40, 64)
        fill_batch(batch, SPEC, [(f, i) for f in range(10) for i in range(4)])
        tx.send_batch(batch, rx.address)
        deadline = time.monotonic() + HANG_S
        while asm.stats.packets + rx.stats.kernel_drops < 40:
            assert time.monotonic() < deadline
            try:
                asm.add(rx.get(timeout=1.0))
            except TimeoutError:
                continue
            values = scrape(server)  # while the Receiver runs
            assert values["fastnet_receiver_packets_total"] >= values["fastnet_packets_placed_total"]
        values = scrape(server)
        stats = rx.stats
        assert values["fastnet_receiver_packets_total"] == stats.packets
        assert values["fastnet_receiver_bytes_total"] == stats.bytes
        assert values["fastnet_receiver_kernel_drops_total"] == stats.kernel_drops
        assert values["fastnet_receiver_ring_overruns_total"] == stats.ring_overruns
        assert values["fastnet_frames_complete_total"] == asm.stats.frames_complete


def test_bad_metrics_arguments():
    with pytest.raises(TypeError):
        fastnet.serve_metrics(object(), ("127.0.0.1", 0))
    asm = FrameAssembler(SPEC)
    for bad in (("127.0.0.1", 70000), ("127.0.0.1", "80"), "127.0.0.1:80"):
        with pytest.raises((TypeError, ValueError)):
            fastnet.serve_metrics(asm, bad)


def test_the_default_address_is_loopback():
    import inspect

    assert inspect.signature(fastnet.serve_metrics).parameters["address"].default[0] == "127.0.0.1"
