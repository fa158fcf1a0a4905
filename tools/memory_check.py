"""No leaks, nothing per datagram: resident memory flat over millions of datagrams.

    python tools/memory_check.py                         # 10 million per path (minutes)
    python tools/memory_check.py --datagrams 200000      # a quick look
    python tools/memory_check.py --paths cython,python   # choose what runs

For each path (``cython`` and ``python``: a fastnet.socket of that backend
sending batches of 1024 datagrams of 64 B to another on 127.0.0.1 and
receiving them back, as tools/alloc_check.py does; ``receiver-cython`` and
``receiver-python``: the same datagrams taken through a fastnet.Receiver's
capture thread and ring, when this fastnet has one), after a warm-up:

* resident memory (VmRSS) is sampled ten times over the run and must stay
  within ``--rss-tolerance`` KiB (default 1024) of the first sample: one
  byte kept per datagram would be 10 MB over ten million. (A Receiver's
  capture thread grows its allocator arena by a few hundred KiB early on,
  then stays put: compare the growth over the second half.)
* tracemalloc, with traces filtered to allocations made under fastnet's own
  files, shows the net growth attributable to fastnet (must be at most
  ``--traced-tolerance`` bytes, default 4096) and the largest lines.

tracemalloc slows the run; ``--no-tracemalloc`` measures memory only.
Exit status 1 if a path grows, loses a datagram, or cannot run.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

from alloc_check import ROWS, SIZE, WARMUP_ROUNDS, one_round, resident_kib

import fastnet

FASTNET_DIR = os.path.dirname(os.path.abspath(fastnet.__file__))
SAMPLES = 10
RING = 64  # the Receiver's ring_size (its default)


def _fastnet_filter():
    return [tracemalloc.Filter(True, os.path.join(FASTNET_DIR, "*"), all_frames=True)]


def _socket_path(backend):
    """(step, close): step() moves ROWS datagrams through a socket pair and returns ROWS."""
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    sender = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    receiver.bind(("127.0.0.1", 0))
    receiver.set_buffers(rcvbuf=8 << 20)
    address = receiver.getsockname()
    outgoing = fastnet.Batch(ROWS, SIZE)
    outgoing.data[:] = 0x5A
    outgoing.lengths[:] = SIZE
    outgoing.count = ROWS
    incoming = fastnet.Batch(ROWS, SIZE)

    def step():
        return one_round(sender, receiver, outgoing, incoming, address)

    def close():
        receiver.close()
        sender.close()

    return step, close


def _receiver_path(backend):
    """The same through a fastnet.Receiver: sent on a socket, taken from the ring."""
    receiver = fastnet.Receiver(
        ("127.0.0.1", 0), batch_size=ROWS, slot_size=SIZE, ring_size=RING, backend=backend, rcvbuf=8 << 20
    ).start()
    sender = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    address = receiver.address
    outgoing = fastnet.Batch(ROWS, SIZE)
    outgoing.lengths[:] = SIZE
    outgoing.count = ROWS

    def step():
        sent = sender.send_batch(outgoing, address)
        got = 0
        while got < sent:
            got += receiver.get(timeout=5.0).count
        return got

    def close():
        sender.close()
        receiver.close()

    # A lightly loaded Receiver reuses the same few ring slots; fill every slot
    # once, so each Batch's one-time allocations (row views, message headers)
    # happen here and not in the measured part.
    sent = 0
    deadline = time.monotonic() + 30
    while receiver.stats.batches < RING and time.monotonic() < deadline:
        if receiver.stats.accounted == sent:
            sent += sender.send_batch(outgoing, address)
        time.sleep(0.001)
    got = 0
    while got < sent:
        got += receiver.get(timeout=5.0).count
    return step, close


def paths_available():
    names = list(fastnet.available_backends())
    return names + [f"receiver-{backend}" for backend in names]


def run_path(name, datagrams, traced):
    if name.startswith("receiver-"):
        step, close = _receiver_path(name[len("receiver-") :])
    else:
        step, close = _socket_path(name)
    try:
        for _ in range(WARMUP_ROUNDS):
            step()
        rounds = -(-datagrams // ROWS)
        every = max(1, rounds // SAMPLES)
        gc.collect()
        if traced:
            tracemalloc.start(4)
            before = tracemalloc.take_snapshot().filter_traces(_fastnet_filter())
        rss = [resident_kib()]
        moved = 0
        started = time.perf_counter()
        for done in range(1, rounds + 1):
            moved += step()
            if done % every == 0:
                rss.append(resident_kib())
        elapsed = time.perf_counter() - started
        gc.collect()
        result = {"name": name, "datagrams": rounds * ROWS, "moved": moved, "elapsed": elapsed, "rss": rss}
        if traced:
            after = tracemalloc.take_snapshot().filter_traces(_fastnet_filter())
            tracemalloc.stop()
            changes = after.compare_to(before, "lineno")
            result["traced_growth"] = sum(stat.size_diff for stat in changes)
            result["traced_top"] = [str(stat) for stat in changes if stat.size_diff][:3]
        return result
    finally:
        close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datagrams", type=int, default=10_000_000, help="datagrams per path (default 10 million)"
    )
    parser.add_argument(
        "--paths",
        default=",".join(paths_available()),
        help=f"comma-separated, from {', '.join(paths_available())}",
    )
    parser.add_argument("--rss-tolerance", type=int, default=1024, metavar="KIB")
    parser.add_argument("--traced-tolerance", type=int, default=4096, metavar="BYTES")
    parser.add_argument("--no-tracemalloc", dest="traced", action="store_false")
    args = parser.parse_args(argv)
    if args.datagrams < ROWS * SAMPLES:
        parser.error(f"--datagrams must be at least {ROWS * SAMPLES}")
    names = [name.strip() for name in args.paths.split(",") if name.strip()]
    unknown = [name for name in names if name not in paths_available()]
    if unknown:
        parser.error(f"unknown or unavailable paths: {', '.join(unknown)}")

    failed = False
    for name in names:
        result = run_path(name, args.datagrams, args.traced)
        rss = result["rss"]
        growth = max(rss) - rss[0]
        print(
            f"{name}: {result['datagrams']:,} datagrams of {SIZE} B sent and "
            f"{result['moved']:,} received in {result['elapsed']:.1f} s"
            f"{' (tracemalloc on)' if args.traced else ''}"
        )
        print(
            f"  resident memory, KiB, after warm-up then every {100 // SAMPLES}%: "
            f"{' '.join(str(value) for value in rss)}"
        )
        late = rss[-1] - rss[len(rss) // 2]
        print(
            f"  largest growth over the first sample: {growth:+,} KiB; over the second "
            f"half of the run: {late:+,} KiB ({late * 1024 / (result['datagrams'] / 2):+.4f} "
            f"B per datagram)"
        )
        if args.traced:
            print(f"  tracemalloc, allocations under fastnet's files: {result['traced_growth']:+,} B net")
            for line in result["traced_top"]:
                print(f"    {line}")
        problems = []
        if result["moved"] != result["datagrams"]:
            problems.append(f"{result['datagrams'] - result['moved']} datagrams missing")
        if growth > args.rss_tolerance:
            problems.append(f"resident memory grew {growth} KiB (> {args.rss_tolerance})")
        if args.traced and result["traced_growth"] > args.traced_tolerance:
            problems.append(f"fastnet's allocations grew {result['traced_growth']} B")
        print(f"  {'FAIL: ' + '; '.join(problems) if problems else 'OK: flat'}", flush=True)
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
