"""Capture writer throughput: how fast a Recorder turns batches into a file.

The recorder is fed the same full batch (``--rows`` datagrams of ``--size``
bytes). By default the feeder hands over a batch whenever a staging buffer is
free (``recorder.backlog < recorder.buffers``) and sleeps briefly otherwise,
so the writer thread is always busy and nothing is dropped: that measures the
writer alone. With ``--rate R`` it offers R datagrams/s on a fixed schedule,
like a receiver at that rate, and reports what could not be written.

Reported per format and size:

* written/s and MB/s: datagrams (payload bytes) the writer put in the file;
* file MB/s: bytes written including record headers;
* dropped: share of datagrams offered that found no free staging buffer
  (``stats.capture_dropped``); 0 in the default mode;
* caller µs/batch: what each ``recorder(batch)`` costs the receiving thread.

A feeder that called in a tight loop would hold the GIL and starve the writer
thread; a real receiver releases it in every receive system call.

Run on a quiet machine, writing to the disk you will record to:

    python bench/capture_writer.py                       # 64 and 8192 B, pcap and npy
    python bench/capture_writer.py --dir /mnt/fast --seconds 5 --size 1472
    python bench/capture_writer.py --rate 1000000 --size 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fastnet  # noqa: E402


def make_batch(rows, size, slot):
    batch = fastnet.Batch(rows, max(size, slot))
    batch.data[:, :size] = np.random.default_rng(1).integers(0, 256, (rows, size), np.uint8)
    batch.lengths[:] = size
    batch.addresses[:] = [127, 0, 0, 1]
    batch.ports[:] = 40000 + np.arange(rows) % 1000
    batch.timestamps[:] = time.time_ns() + np.arange(rows)
    batch.count = rows
    return batch


def run(fmt, size, args):
    batch = make_batch(args.rows, size, args.slot)
    path = os.path.join(args.dir, f"fastnet-bench-capture.{fmt}")
    calls = 0
    caller_ns = 0
    try:
        recorder = fastnet.open_recorder(path, local_address=("127.0.0.1", 7788), buffers=args.buffers)
        started = time.perf_counter()
        end = started + args.seconds
        interval = None if args.rate is None else args.rows / args.rate
        due = started
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if interval is None:
                if recorder.backlog >= recorder.buffers:
                    time.sleep(20e-6)  # releases the GIL for the writer
                    continue
            else:
                if now < due:
                    time.sleep(min(due - now, 0.001))
                    continue
                due += interval
            t0 = time.perf_counter_ns()
            recorder(batch)
            caller_ns += time.perf_counter_ns() - t0
            calls += 1
        recorder.close()  # includes writing what was still staged
        elapsed = time.perf_counter() - started
        stats = recorder.stats
        file_size = os.path.getsize(path)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    offered = calls * args.rows
    return {
        "format": fmt,
        "size": size,
        "written_per_s": stats.written / elapsed,
        "mb_per_s": stats.bytes / elapsed / 1e6,
        "file_mb_per_s": file_size / elapsed / 1e6,
        "dropped": stats.capture_dropped / offered if offered else 0.0,
        "caller_us_per_batch": caller_ns / calls / 1e3 if calls else 0.0,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=int, nargs="+", default=[64, 8192], help="payload bytes (default 64 8192)"
    )
    parser.add_argument("--format", nargs="+", default=["pcap", "npy"], choices=["pcap", "npy"])
    parser.add_argument("--rows", type=int, default=1024, help="datagrams per batch")
    parser.add_argument("--slot", type=int, default=0, help="receiver slot size (default: the payload size)")
    parser.add_argument("--buffers", type=int, default=4, help="recorder staging buffers")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="offer this many datagrams/s instead of keeping the writer busy",
    )
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write")
    args = parser.parse_args(argv)
    mode = "writer kept busy" if args.rate is None else f"offered {args.rate:,.0f} datagrams/s"
    print(
        f"writing to {args.dir}; {args.rows} rows per batch, {args.buffers} buffers, "
        f"{args.seconds:g} s each, {mode}"
    )
    print(
        f"{'format':6} {'size':>6} {'written/s':>12} {'MB/s':>9} {'file MB/s':>10} "
        f"{'dropped':>8} {'caller us/batch':>16}"
    )
    for fmt in args.format:
        for size in args.size:
            r = run(fmt, size, args)
            print(
                f"{r['format']:6} {r['size']:>6} {r['written_per_s']:>12,.0f} "
                f"{r['mb_per_s']:>9,.0f} {r['file_mb_per_s']:>10,.0f} {r['dropped']:>8.1%} "
                f"{r['caller_us_per_batch']:>16,.1f}"
            )


if __name__ == "__main__":
    main()
