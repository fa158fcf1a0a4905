"""Fuzz target: arbitrary bytes as a TCP stream into socket.recv_frames, on every engine.

The input chooses the framing (prefix size, byte order, max_frame,
on_oversize), the Batch (capacity, slot size), where the stream is cut into
separate writes, and the stream itself: raw bytes, or frames built from the
input with correct prefixes (so deep inputs are reached quickly) with their
last one possibly cut. The bytes go through a real loopback TCP connection
into a fastnet socket of each available backend; the writer then shuts its
side down.

Each engine must give exactly what an independent parser of the same bytes
(``reference`` below) gives: the same frames, in order, with the same
truncation flags, and then the same end: a clean end of stream, or
IncompleteFrameError / FrameLimitError / SlotTooSmallError with the same
numbers. A hang (no answer within 5 s after the whole stream is in) is a
finding too, and so is a write outside the Batch's arrays: they sit between
guard bytes (tests/guards.py), checked after every call.
"""

from __future__ import annotations

import os
import socket as stdsocket
import struct
import sys

from _fuzzlib import Choices, fuzz_main

import fastnet

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from guards import guarded_batch  # noqa: E402  (tests/guards.py)

PREFIX_SIZES = (2, 4, 8)
MAX_FRAMES = (0, 1, 3, 255, 256, 4096, 65535, 1 << 20, None)  # None: the default, 16 MiB
CAPACITIES = (1, 2, 3, 8, 64)
SLOTS = (1, 2, 4, 7, 64, 256, 4096)
#: The whole stream is written before reading, so it must fit the socket buffers.
MAX_STREAM = 64 * 1024
WAIT_S = 5.0
_LINGER_RESET = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT per input


def settings_from(choose: Choices) -> dict:
    framing = {
        "prefix_size": choose.pick(PREFIX_SIZES),
        "byteorder": choose.pick(("big", "little")),
        "on_oversize": choose.pick(("error", "truncate")),
    }
    max_frame = choose.pick(MAX_FRAMES)
    if max_frame is not None:
        framing["max_frame"] = max_frame
    return framing


def encode_frames(choose: Choices, framing: dict) -> bytes:
    """Frames with correct prefixes, payloads from the input; the last may be cut."""
    size, order = framing["prefix_size"], framing["byteorder"]
    out = []
    for _ in range(256):
        length = choose.byte()
        if length == 255:  # now and then a long frame
            length = choose.uint(2)
        body = choose.take(length)
        if not body and length:
            out.append(length.to_bytes(size, order))  # a frame cut after its prefix
            break
        out.append(len(body).to_bytes(size, order) + body)
    return b"".join(out)


def reference(stream: bytes, framing: dict, slot: int):
    """(frames, end) for ``stream``: what recv_frames must return, parsed independently."""
    prefix, order = framing["prefix_size"], framing["byteorder"]
    limit = min(framing.get("max_frame", 16 * 2**20), 2 ** (8 * prefix) - 1)
    truncate = framing["on_oversize"] == "truncate"
    frames, pos = [], 0
    while True:
        left = len(stream) - pos
        if left == 0:
            return frames, ("eof",)
        if left < prefix:
            return frames, ("incomplete", left, None)
        size = int.from_bytes(stream[pos : pos + prefix], order)
        if size > limit:
            return frames, ("limit", size)
        if size > slot and not truncate:
            return frames, ("slot", size)
        if left < prefix + size:
            return frames, ("incomplete", left, prefix + size)
        body = stream[pos + prefix : pos + prefix + size]
        frames.append((body[:slot], size > slot))
        pos += prefix + size


def _end_of(exc):
    if isinstance(exc, fastnet.IncompleteFrameError):
        return ("incomplete", exc.received, exc.expected)
    if isinstance(exc, fastnet.FrameLimitError):
        return ("limit", exc.length)
    if isinstance(exc, fastnet.SlotTooSmallError):
        return ("slot", exc.length)
    raise exc


class _Listeners:
    """One loopback listener per backend, kept for all inputs."""

    def __init__(self):
        self._by_backend = {}

    def get(self, backend):
        listener = self._by_backend.get(backend)
        if listener is None:
            listener = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend)
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            listener.settimeout(WAIT_S)
            self._by_backend[backend] = listener
        return listener


_listeners = _Listeners()


def _take(sock, batch, guards, frames, timeout, peer=None):
    try:
        n = sock.recv_frames(batch, timeout=timeout)
    finally:
        guards.check()
    assert n == batch.count
    if n and peer is not None:
        assert batch.address(n - 1) == peer, (batch.address(n - 1), peer)
    frames.extend((bytes(batch.payload(i)), bool(batch.truncated[i])) for i in range(n))
    return n


def through_engine(backend, stream, cuts, framing, capacity, slot):
    """What recv_frames of ``backend`` makes of ``stream`` written in pieces cut at ``cuts``."""
    listener = _listeners.get(backend)
    client = stdsocket.create_connection(listener.getsockname(), timeout=WAIT_S)
    try:
        server, _ = listener.accept()
        try:
            server.set_framing(**framing)
            batch, guards = guarded_batch(capacity, slot)
            peer = client.getsockname()
            frames, end = [], None
            pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
            for piece in pieces:
                client.sendall(piece)
                try:  # take what has arrived so far, without waiting
                    _take(server, batch, guards, frames, 0, peer)
                except BlockingIOError:
                    pass
                except fastnet.FramingError as exc:  # stuck: stays so, say the docs
                    end = _end_of(exc)
                    break
                except fastnet.SlotTooSmallError as exc:
                    end = _end_of(exc)
                    break
            client.shutdown(stdsocket.SHUT_WR)
            while end is None:
                try:
                    if _take(server, batch, guards, frames, WAIT_S, peer) == 0:
                        end = ("eof",)
                except (fastnet.FramingError, fastnet.SlotTooSmallError) as exc:
                    end = _end_of(exc)
            if end != ("eof",):  # the error repeats: the stream stays unusable
                try:
                    _take(server, batch, guards, [], 0)
                except (fastnet.FramingError, fastnet.SlotTooSmallError) as exc:
                    assert _end_of(exc) == end, (end, exc)
                else:
                    raise AssertionError(f"{backend}: {end} did not repeat")
            return frames, end
        finally:
            server.close()
    finally:
        client.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, _LINGER_RESET)
        client.close()


def run(data: bytes, backends=None):
    choose = Choices(data)
    framing = settings_from(choose)
    capacity, slot = choose.pick(CAPACITIES), choose.pick(SLOTS)
    structured = choose.flag()
    cut_count = choose.byte() % 4
    cut_points = [choose.uint(2) for _ in range(cut_count)]
    stream = (encode_frames(choose, framing) if structured else choose.rest())[:MAX_STREAM]
    cuts = sorted({point % len(stream) for point in cut_points if stream} - {0})
    expected = reference(stream, framing, slot)
    for backend in backends or fastnet.available_backends():
        got = through_engine(backend, stream, cuts, framing, capacity, slot)
        assert got == expected, (
            backend,
            framing,
            capacity,
            slot,
            got[1],
            expected[1],
            len(got[0]),
            len(expected[0]),
        )
    return expected


def test_one_input(data: bytes) -> None:
    run(data)


if __name__ == "__main__":
    fuzz_main(test_one_input)
