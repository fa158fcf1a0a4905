"""The consumer's per-frame path on a fixed workload, for instruction counts (callgrind) or cProfile.

    python bench/frames_consumer_path.py add [--batches 16] [--skip]
    python bench/frames_consumer_path.py get [--batches 16] [--skip]

``add``: a FrameAssembler (cython engine) over ``--batches`` batches of 1024
datagrams of 1040 B, 16 per frame, whole frames in order (the batches of
``frames_assembly.py placement``). ``get``: a Receiver with ``frames=`` on
loopback takes the same datagrams, sent one batch at a time and captured
before the consumer starts; then ``get()`` takes every frame. ``--skip``
does everything but the measured loop, so that the difference between two
runs under ``valgrind --tool=callgrind`` is the loop's instructions alone;
the counts do not depend on the machine's load, as times do::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/frames_consumer_path.py get
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/frames_consumer_path.py get --skip

(the difference of the two "Collected" totals, divided by the frames printed).
"""

from __future__ import annotations

import argparse
import sys
import time

from frames_assembly import PPF, ROWS, frame_batches, set_headers, spec_for  # this script's folder

import fastnet


def run_add(args) -> int:
    spec = spec_for(1024)
    batches = frame_batches(spec, args.batches, first_frame=1 << 20)
    asm = fastnet.FrameAssembler(spec, backend="cython")
    asm.add(frame_batches(spec, 1)[0])  # the pool at its size; the measured ids come after a gap
    asm.flush()
    frames = 0
    if not args.skip:
        for batch in batches:
            frames += len(asm.add(batch))
        frames += len(asm.flush())
    return frames


def run_get(args) -> int:
    spec = spec_for(1024)
    batch = frame_batches(spec, 1)[0]
    rows = ROWS * args.batches
    with fastnet.Receiver(
        ("127.0.0.1", 0),
        slot_size=spec.packet_size,
        batch_size=ROWS,
        ring_size=args.batches + 1,
        rcvbuf=4 << 20,
        backend="cython",
        frames=spec,
    ) as rx:
        rx.start()
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="cython") as sock:
            for b in range(args.batches):
                set_headers(batch, b * (ROWS // PPF))
                sock.send_batch(batch, rx.address)
                deadline = time.monotonic() + 60
                while rx.stats.packets < (b + 1) * ROWS and time.monotonic() < deadline:
                    time.sleep(0.2)  # sleeping costs no instructions; a poll loop would
        frames = 0
        if not args.skip:
            for _ in range(rows // PPF):
                rx.get(timeout=5.0)
                frames += 1
        stats = rx.stats
    if stats.packets != rows:
        print(f"only {stats.packets} of {rows} datagrams were captured", file=sys.stderr)
    return frames


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("add", "get"))
    parser.add_argument("--batches", type=int, default=16, help="batches of 1024 datagrams")
    parser.add_argument("--skip", action="store_true", help="everything but the measured loop")
    args = parser.parse_args(argv)
    frames = {"add": run_add, "get": run_get}[args.what](args)
    print(f"{args.what}: {frames} frames of {PPF} datagrams")
    return 0


if __name__ == "__main__":
    sys.exit(main())
