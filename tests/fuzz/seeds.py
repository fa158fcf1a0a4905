"""Write starting inputs into corpus/<target>/ (run once; fuzzing grows them).

    python tests/fuzz/seeds.py

Each seed is a well-formed input in the shape its target reads (see the
target's docstring), so fuzzing starts from files fastnet itself writes and
streams it itself sends rather than from nothing.
"""

from __future__ import annotations

import hashlib
import os
import socket as stdsocket
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _recorded(suffix: str) -> bytes:
    import fastnet

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "seed" + suffix)
        with fastnet.open_recorder(path, local_address=("127.0.0.1", 7788)) as recorder:
            for family, host in ((stdsocket.AF_INET, "10.0.0.1"), (stdsocket.AF_INET6, "::1")):
                batch = fastnet.Batch.from_payloads([b"a", b"bc" * 4, b""], slot_size=8, family=family)
                batch.addresses[:] = list(stdsocket.inet_pton(family, host))
                batch.ports[:] = 4000
                batch.truncated[1] = True
                recorder(batch)
        with open(path, "rb") as handle:
            return handle.read()


def seeds() -> dict:
    frames = lambda *bodies: b"".join(len(b).to_bytes(4, "big") + b for b in bodies)  # noqa: E731
    return {
        "pcap": [
            b"\x00" + _recorded(".pcap"),
            # records mode: header choices, then (size, body, stamps, extra) per record
            b"\x02<\x01\x04\x03" + b"\x1c" + bytes.fromhex("4500001c000040004011") + bytes(18),
        ],
        "npy": [
            b"\x00" + _recorded(".npy"),
            b"\x02\x03\x02" + bytes(58 * 2),
            b"\x01\x00\x00\x20\x00" + b"{'descr': [], 'shape': (1,), }",
        ],
        "frames": [
            # big/error, default max_frame, capacity 2, slot 64, raw stream, no cuts
            b"\x01\x00\x00\x08\x03\x04\x00\x00" + frames(b"hello", b"", b"world" * 3),
            # 2-byte little prefixes, truncate, capacity 1, slot 4, structured, one cut
            b"\x00\x01\x01\x08\x00\x03\x01\x01\x00\x05" + b"\x06abcdef\x00\x02xy",
        ],
        # kernel-shaped: SO_TIMESTAMPNS + SO_TIMESTAMPING + UDP_GRO 700 (whole; in the last
        # area slot; cut at 80 bytes), SCM_TIMESTAMP + UDP_GRO 100, an empty message; raw bytes
        "gro": [
            bytes.fromhex(
                "0000040300af0001030000050000000000000000000000000000000000030700"
                "0000000000000000000000000000000000000000000000000000000000000000"
                "00000000000000000000000000000001020200000000010320007061796c6f61"
                "642d6279746573"
            ),
            bytes.fromhex(
                "0001030400af0001020003070000000000000000000000000000000000000000"
                "0000000000000000000000000000000000000000000000000000000001020200"
                "000000010320007061796c6f61642d6279746573"
            ),
            bytes.fromhex(
                "000002020003e801020001050000000000000000000000000000000001020200"
                "0000000100c8007061796c6f61642d6279746573"
            ),
            bytes.fromhex("000001010000000100007061796c6f61642d6279746573"),
            bytes.fromhex(
                "0001040300af0001030000050000000000000000000000000000000000030700"
                "0000000000000000000000000000000000000000000000000000000000000000"
                "000000000000000000000000000000010202000000000103200100507061796c"
                "6f61642d6279746573"
            ),
            bytes.fromhex(
                "01010203000bb800002814000000000000001100000068000000400000000000"
                "00000000000000000000000000000000000001037a7a"
            ),
        ],
        # frame placement (the order fuzz_frame_placement.py reads its choices in): a counter
        # spec, 2 packets per frame, one batch of 8 whole packets; an index spec with a fixed
        # packet size, 2 batches with frames out of order, a duplicate and a cut row
        "frame_placement": [
            bytes([0, 0, 4, 0, 1, 0, 0, 1, 4, 4, 2, 0, 0, 2, 0, 3, 8])
            + b"".join(bytes([8, 0, 0, 0, c]) + bytes([c] * 4) + bytes([0, c, 1]) for c in range(8)),
            bytes([1, 0, 2, 0, 1, 0, 0, 1, 2, 1, 0, 1, 0, 0, 1, 3, 4, 3, 1, 7, 0xAA, 3, 1])
            + bytes([2, 4])
            + b"".join(
                bytes([7, 0, f, i]) + bytes([f, i, f, i]) + bytes([0, i, c])
                for f, i, c in ((6, 2, 1), (5, 0, 1), (6, 0, 1), (5, 1, 8))
            )
            + bytes([2, 5])
            + b"".join(
                bytes([7, 0, f, i]) + bytes([f, i, f, i]) + bytes([0, i, 1])
                for f, i in ((5, 2), (5, 1), (6, 1), (6, 1), (9, 0))
            ),
        ],
        "cmsg": [
            b"\x00\x02"
            + b"\x01\x02\x04\x01"
            + struct.pack(">H", 1000 + 100)
            + bytes(20)
            + b"\x01\x05\x01\x02\x03\x04"
            + b"payload",
            b"\x01\x01\x00\x00\x05\x00\x10\x00" + bytes(16) + b"\x00\x00\x10\x00\x03\x03",
        ],
    }


def main() -> int:
    sys.path.insert(0, HERE)
    for target, inputs in seeds().items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for data in inputs:
            name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(data)
        print(f"{target}: {len(inputs)} seeds in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
