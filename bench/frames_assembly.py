"""Frame assembly speed: placement per engine, HDF5 writing, and a Receiver with and without frames.

    python bench/frames_assembly.py placement [--payload 1024] [--repeats 7] [--shuffle] [--borrow]
    python bench/frames_assembly.py hdf5 [--frames 2000] [--dir /tmp]
    python bench/frames_assembly.py receiver [--seconds 3] [--repeats 5]
        [--batch-size N] [--frames-batch-size N]

``placement``: the same batches of synthetic frames (16 packets per frame,
1024 rows per batch, whole frames in order) through a new FrameAssembler on
each engine, in turns; datagrams/s and payload GB/s, medians of the
repeats. Beside them, the rate of one plain numpy copy of the same payload
bytes out of the same rows: placement copies each payload byte once, so it
cannot beat that copy, and comes close to it when nothing else costs much.
With ``--borrow`` the batches are added with ``borrow=True``, as a Receiver
adds its ring's windows: whole frames in order are then views on the rows,
and no payload byte is copied.

``hdf5``: a FrameWriter writing frames of 16 x 8000 bytes to a file in
``--dir`` (the local disk), including the final flush and close and an
fsync of the file, so the figure is the disk's and not the page cache's
(which is given too); MB/s.

``receiver``: a sender process sends synthetic frames over loopback as fast
as it can for ``--seconds``; this process receives them with a Receiver
(cython engine): ``plain`` takes the batches, ``frames`` is
``Receiver(frames=spec)``, whose ``get()`` assembles them. The two runs
alternate; the datagram rates are medians. For where the time goes, each
run also reports the CPU time of the consumer thread, of the capture thread
(from /proc/self/task) and of the sender process, as shares of the sending
time (1.0 = one CPU busy for all of it). The machine is shared: compare figures from
one run only. Both Receivers take the Receiver's default ``batch_size``
unless ``--batch-size`` (both) or ``--frames-batch-size`` (the frames one) says
otherwise; the header gives the sizes each used.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import fastnet
from fastnet import Field, FrameSpec

ROWS = 1024
PPF = 16


def spec_for(payload: int) -> FrameSpec:
    return FrameSpec(
        16, payload, PPF, frame_id=Field(0, 8), index=Field(8, 2, "little"), packet_size=16 + payload
    )


def frame_batches(spec: FrameSpec, batches: int, first_frame: int = 0, shuffle: bool = False):
    """Batches of whole frames in order, headers written with numpy; ``shuffle``: packets in a random
    order within each frame."""
    out = []
    per_batch = ROWS // PPF
    rng = np.random.default_rng(1)
    for b in range(batches):
        batch = fastnet.Batch(ROWS, spec.packet_size)
        set_headers(batch, first_frame + b * per_batch)
        batch.data[:, 16:] = (np.arange(ROWS)[:, None] + b) % 251
        if shuffle:
            order = (np.arange(ROWS) // PPF) * PPF + rng.permuted(
                np.tile(np.arange(PPF), (per_batch, 1)), axis=1
            ).ravel()
            batch.data[:ROWS] = batch.data[order]
        out.append(batch)
    return out


def set_headers(batch, first_frame: int) -> None:
    ids = (first_frame + np.arange(ROWS) // PPF).astype(">u8")
    batch.data[:, 0:8] = ids.view(np.uint8).reshape(ROWS, 8)
    batch.data[:, 8:10] = (np.arange(ROWS) % PPF).astype("<u2").view(np.uint8).reshape(ROWS, 2)
    batch.lengths[:] = batch.slot_size
    batch.count = ROWS


def bench_placement(args) -> None:
    spec = spec_for(args.payload)
    batches = frame_batches(spec, args.batches, shuffle=args.shuffle)
    backends = fastnet.available_backends()
    seconds = {name: [] for name in backends + ["numpy copy"]}
    copy_into = np.empty((ROWS, args.payload), dtype=np.uint8)
    for _ in range(args.repeats):
        for name in backends:
            asm = fastnet.FrameAssembler(spec, backend=name)
            asm.add(batches[0])  # the pool grows to its size on the first batch
            asm = fastnet.FrameAssembler(spec, backend=name)
            started = time.perf_counter()
            for batch in batches:
                asm.add(batch, borrow=args.borrow)
            asm.flush()
            seconds[name].append(time.perf_counter() - started)
            assert asm.stats.packets_placed == ROWS * args.batches, asm.stats
        started = time.perf_counter()
        for batch in batches:
            np.copyto(copy_into, batch.data[:, 16:])
        seconds["numpy copy"].append(time.perf_counter() - started)
    datagrams = ROWS * args.batches
    print(f"placement: {datagrams:,} datagrams of {spec.packet_size} B ({args.payload} B payload), "
          f"{PPF} per frame{' shuffled within each frame' if args.shuffle else ''}, {ROWS} per batch"
          f"{', borrowed' if args.borrow else ''}; "
          f"medians of {args.repeats}")  # fmt: skip
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"  {name:10s} {datagrams / median / 1e6:8.3f} M datagrams/s  "
            f"{datagrams * args.payload / median / 1e9:7.2f} GB/s payload  "
            f"(min {min(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms per pass)"
        )


def bench_hdf5(args) -> None:
    spec = spec_for(8000)
    batches = frame_batches(spec, 2)
    asm = fastnet.FrameAssembler(spec)
    frames = [f.copy() for batch in batches for f in asm.add(batch)]  # 128 frames to cycle through
    results, cached = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            path = os.path.join(folder, "bench.h5")
            started = time.perf_counter()
            with fastnet.FrameWriter(path, spec) as writer:
                for start in range(0, args.frames, 64):
                    writer.write(frames[: min(64, args.frames - start)])
            written = time.perf_counter() - started
            handle = os.open(path, os.O_RDONLY)
            try:
                os.fsync(handle)  # on the disk, not only in the page cache
            finally:
                os.close(handle)
            elapsed = time.perf_counter() - started
            size = os.path.getsize(path)
        results.append(elapsed)
        cached.append(written)
    median = statistics.median(results)
    nbytes = args.frames * spec.frame_bytes
    print(
        f"hdf5: {args.frames:,} frames of {spec.frame_bytes:,} B ({nbytes / 1e6:,.0f} MB, "
        f"file {size / 1e6:,.0f} MB) "
        f"to {args.dir}, with fsync: {nbytes / median / 1e6:,.0f} MB/s = "
        f"{8 * nbytes / median / 1e9:.2f} Gbit/s "
        f"(median of {args.repeats}; min {min(results):.2f} s, max {max(results):.2f} s); "
        f"to the page cache (before fsync): {nbytes / statistics.median(cached) / 1e6:,.0f} MB/s"
    )


def run_sender(args) -> int:
    spec = spec_for(args.payload)
    port = int(sys.stdin.readline())
    batch = frame_batches(spec, 1)[0]
    end = time.monotonic() + args.seconds
    sent, frame = 0, 0
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="cython") as sock:
        sock.set_buffers(sndbuf=4 << 20)
        while time.monotonic() < end:
            set_headers(batch, frame)
            sent += sock.send_batch(batch, ("127.0.0.1", port))
            frame += ROWS // PPF
    print(json.dumps({"sent": sent}), flush=True)
    return 0


def _thread_cpu_s(native_id: int) -> float:
    """CPU time (user + system) of one thread of this process, from /proc (proc(5): utime, stime)."""
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is stat's field 3 (state): utime and stime are fields 14 and 15,
    # proc(5): "measured in clock ticks (divide by sysconf(_SC_CLK_TCK))".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def receiver_batch_size(args, with_frames: bool):
    """The batch_size to pass for one mode, or None to leave the Receiver's default."""
    if with_frames and args.frames_batch_size is not None:
        return args.frames_batch_size
    return args.batch_size


def one_receiver_run(args, spec, with_frames: bool) -> dict:
    children_before = _children_cpu_s()
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "sender",
         "--seconds", str(args.seconds), "--payload", str(args.payload)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    batch_size = receiver_batch_size(args, with_frames)
    sizes = {} if batch_size is None else {"batch_size": batch_size}
    try:
        with fastnet.Receiver(
            ("127.0.0.1", 0),
            slot_size=spec.packet_size,
            rcvbuf=32 << 20,
            backend="cython",
            frames=spec if with_frames else None,
            **sizes,
        ) as rx:
            rx.start()
            used_batch_size = rx.batch_size
            capture_tid = rx._thread.native_id  # the capture thread, for its CPU time
            capture_before = _thread_cpu_s(capture_tid)
            consumer_before = time.thread_time()
            child.stdin.write(f"{rx.address[1]}\n")
            child.stdin.flush()
            first = last = None
            idle_since = None
            while True:
                try:
                    rx.get(timeout=0.2)
                except TimeoutError:
                    if child.poll() is not None:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 0.5:
                            break
                    continue
                last = time.perf_counter()
                first = first or last
            stats = rx.stats
            capture_cpu = _thread_cpu_s(capture_tid) - capture_before
            consumer_cpu = time.thread_time() - consumer_before
        sent = json.loads(child.stdout.readline())["sent"]
    finally:
        child.kill()
        child.wait()
    return dict(
        sent=sent,
        packets=stats.packets,
        kernel_drops=stats.kernel_drops,
        rate=stats.packets / (last - first) if first and last and last > first else 0.0,
        batch_size=used_batch_size,
        placed=stats.packets_placed,
        consumer_cpu=consumer_cpu / args.seconds,  # the idle tail after the sender costs ~nothing
        capture_cpu=capture_cpu / args.seconds,
        sender_cpu=(_children_cpu_s() - children_before) / args.seconds,
    )


def bench_receiver(args) -> None:
    spec = spec_for(args.payload)
    runs: dict = {"plain": [], "frames": []}
    for _ in range(args.repeats):
        for mode in ("plain", "frames"):
            runs[mode].append(one_receiver_run(args, spec, mode == "frames"))
    print(
        f"receiver (cython): {args.seconds} s of {spec.packet_size} B datagrams per run, "
        f"{args.repeats} runs each"
    )
    medians = {}
    for mode, results in runs.items():
        medians[mode] = statistics.median(r["rate"] for r in results)
        drops = [r["kernel_drops"] / r["sent"] for r in results]
        print(
            f"  {mode:6s} batch_size {results[0]['batch_size']}: "
            f"{medians[mode] / 1e6:6.3f} M datagrams/s received (median), "
            f"kernel drops {statistics.median(drops):.1%} of sent (median); "
            f"rates {', '.join(format(r['rate'] / 1e6, '.3f') for r in results)}"
        )
        cpu = {
            key: statistics.median(r[key] for r in results)
            for key in ("consumer_cpu", "capture_cpu", "sender_cpu")
        }
        per = {
            key: statistics.median(r[key] * args.seconds / max(1, r["packets"]) * 1e9 for r in results)
            for key in ("consumer_cpu", "capture_cpu")
        }
        print(
            f"         CPU share of the sending time (medians): consumer {cpu['consumer_cpu']:.2f}, "
            f"capture {cpu['capture_cpu']:.2f}, sender {cpu['sender_cpu']:.2f}; per datagram "
            f"received: consumer {per['consumer_cpu']:.0f} ns, capture {per['capture_cpu']:.0f} ns"
        )
    # Run k of each mode ran back to back: their ratio is the pair's, drift and all.
    pairs = sorted(
        f["rate"] / p["rate"] for p, f in zip(runs["plain"], runs["frames"], strict=True) if p["rate"] > 0
    )
    spread = ""
    if pairs:
        spread = f"; run by run {statistics.median(pairs):.3f} (min {pairs[0]:.3f}, max {pairs[-1]:.3f})"
    print(f"  frames / plain = {medians['frames'] / medians['plain']:.3f} (of the medians){spread}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("placement", "hdf5", "receiver", "sender"))
    parser.add_argument("--payload", type=int, default=1024, help="payload bytes per datagram")
    parser.add_argument(
        "--batches", type=int, default=16, help="batches of 1024 datagrams per pass (placement)"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--shuffle", action="store_true", help="packets out of order within each frame (placement)"
    )
    parser.add_argument(
        "--borrow", action="store_true", help="add(batch, borrow=True), as a Receiver does (placement)"
    )
    parser.add_argument("--frames", type=int, default=2000, help="frames to write (hdf5)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the HDF5 file goes")
    parser.add_argument("--seconds", type=float, default=3.0, help="sending time per run (receiver)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="both Receivers' batch_size (default: the Receiver's)"
    )
    parser.add_argument(
        "--frames-batch-size",
        type=int,
        default=None,
        help="the frames Receiver's batch_size, if not --batch-size",
    )
    args = parser.parse_args(argv)
    if args.what == "sender":
        return run_sender(args)
    {"placement": bench_placement, "hdf5": bench_hdf5, "receiver": bench_receiver}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
