"""A small workload touching every path of both engines, for valgrind's memcheck.

    bash tools/memcheck.sh                  # runs this under valgrind and summarises
    python tools/memcheck_workload.py       # the same without valgrind (a few seconds)

On each backend, over loopback only: batches sent and received (IPv4 and
IPv6, full and partial batches, truncation, kernel timestamps through the
ancillary path), GSO sends and GRO receives with carry-over between calls,
length-prefixed frames over TCP (partial frames, truncation, a refused
prefix), a Receiver (capture thread, ring, sequence tracking), and the
error paths bad input takes. Everything is repeated
``--rounds`` times so a leak per call would stand out from one-time setup.
Exit status 1 if any datagram or frame did not come back as sent.
"""

from __future__ import annotations

import argparse
import socket as stdsocket
import sys

import fastnet

TIMEOUT = 20.0  # generous: everything runs 20-50 times slower under valgrind


def _receive(receiver, count, slot, family, capacity=64):
    batch = fastnet.Batch(capacity, slot, family=family)
    got = []
    while len(got) < count:
        n = receiver.recv_batch(batch, timeout=TIMEOUT)
        got.extend(
            (bytes(batch.payload(i)), bool(batch.truncated[i]), int(batch.timestamps[i])) for i in range(n)
        )
    return got


def datagrams(backend: str, family: int, host: str) -> None:
    with (
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind((host, 0))
        receiver.set_buffers(rcvbuf=4 << 20)
        payloads = [bytes([i]) * (i * 7 % 300) for i in range(100)]
        batch = fastnet.Batch.from_payloads(payloads, slot_size=300, family=family)
        assert sender.send_batch(batch, receiver.getsockname(), gso=False) == 100
        got = _receive(receiver, 100, 200, family, capacity=33)  # partial batches, truncation
        assert [p for p, _, _ in got] == [p[:200] for p in payloads]
        assert [t for _, t, _ in got] == [len(p) > 200 for p in payloads]
        receiver.enable_timestamps()
        assert sender.send_batch(batch, receiver.getsockname()) == 100
        got = _receive(receiver, 100, 300, family)
        assert all(stamp > 0 for _, _, stamp in got)
        for bad in (
            lambda: sender.send_batch(batch, ("127.0.0.1", 99999)),
            lambda: receiver.recv_batch(batch, timeout=-1),
            lambda: receiver.recv_batch("not a batch"),
        ):
            try:
                bad()
            except (TypeError, ValueError, OverflowError):
                pass


def offload(backend: str) -> None:
    if not (fastnet.features()["gso"] and fastnet.features()["gro"]):
        return
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend, gro=True) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.set_buffers(rcvbuf=8 << 20)
        payloads = [i.to_bytes(2, "big") * 500 for i in range(150)] + [b"tail"]
        batch = fastnet.Batch.from_payloads(payloads)
        assert sender.send_batch(batch, receiver.getsockname(), gso=True) == len(payloads)
        got = _receive(receiver, len(payloads), 1000, fastnet.AF_INET, capacity=50)  # carry-over
        assert [p for p, _, _ in got] == payloads


def frames(backend: str) -> None:
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend)
        client.settimeout(TIMEOUT)
        client.connect(listener.getsockname())
        listener.settimeout(TIMEOUT)
        server, _ = listener.accept()
        with client, server:
            payloads = [bytes([i]) * (i * 13 % 2000) for i in range(200)]
            batch = fastnet.Batch.from_payloads(payloads, slot_size=2000)
            assert client.send_frames(batch) == 200
            server.set_framing(on_oversize="truncate")
            got = []
            rows = fastnet.Batch(17, 1500)
            while len(got) < 200:
                n = server.recv_frames(rows, timeout=TIMEOUT)
                got.extend(bytes(rows.payload(i)) for i in range(n))
            assert got == [p[:1500] for p in payloads]
            server.set_framing(max_frame=10)
            client.sendall((11).to_bytes(4, "big"))
            try:
                server.recv_frames(rows, timeout=TIMEOUT)
            except fastnet.FrameLimitError:
                pass
            else:
                raise AssertionError("a prefix over max_frame was accepted")


def receiver(backend: str) -> None:
    with (
        fastnet.Receiver(
            ("127.0.0.1", 0),
            slot_size=128,
            batch_size=64,
            ring_size=4,
            seq=fastnet.SeqField(),
            on_full="drop",
            backend=backend,
        ) as rx,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        batch = fastnet.Batch(250, 128)
        batch.lengths[:] = 100
        batch.data[:, :8] = fastnet.Batch.from_payloads([i.to_bytes(8, "big") for i in range(250)]).data[
            :, :8
        ]
        batch.count = 250
        assert sender.send_batch(batch, rx.address) == 250
        got = 0
        while got + rx.stats.ring_overruns + rx.stats.kernel_drops < 250:
            got += rx.get(timeout=TIMEOUT).count
    assert rx.stats.accounted == 250


def receiver_gro(backend: str) -> None:
    """The capture loop's GRO path: super-datagrams split into the ring's rows, a carry-over at stop."""
    if not (fastnet.features()["gro"] and fastnet.features()["gso"]):
        return
    with (
        fastnet.Receiver(
            ("127.0.0.1", 0), slot_size=100, batch_size=16, ring_size=2, gro=True, backend=backend
        ) as rx,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        batch = fastnet.Batch(64, 100)
        batch.lengths[:] = 100
        batch.count = 64
        assert sender.send_batch(batch, rx.address, gso=True) == 64
        got = 0
        while got < 32:  # the ring holds 32; the rest stays queued or carried over
            got += rx.get(timeout=TIMEOUT).count
    assert rx.stats.accounted == 64


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ipv6 = True
    try:
        with stdsocket.socket(stdsocket.AF_INET6, stdsocket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        ipv6 = False
    for round_ in range(args.rounds):
        for backend in fastnet.available_backends():
            datagrams(backend, fastnet.AF_INET, "127.0.0.1")
            if ipv6:
                datagrams(backend, fastnet.AF_INET6, "::1")
            offload(backend)
            frames(backend)
            receiver(backend)
            receiver_gro(backend)
        print(
            f"round {round_ + 1} of {args.rounds} done ({', '.join(fastnet.available_backends())})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
