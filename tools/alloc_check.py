"""Show that steady-state receive and send allocate nothing per datagram.

    python tools/alloc_check.py [--datagrams 1000000] [--backend cython]

Sends and receives ``--datagrams`` datagrams of 64 B on 127.0.0.1 through
one Batch per side (1024 rows), after a warm-up that lets the engine make
its one-time allocations (message headers kept on the Batch). Then it
prints, over the measured part:

* tracemalloc: memory held by Python allocations before and after, and the
  peak in between. A per-datagram allocation that is kept would grow the
  net figure with the count; one that is made and freed per datagram would
  still not show up net, so the peak is shown too. It stays at the size of
  one call's temporaries whatever the count, which is what "nothing per
  datagram" means here;
* the process's resident memory (VmRSS) before and after.

Exit status 1 if the net growth exceeds a fixed 4 KiB (one byte kept per
datagram would be 1 MB over the default million).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

import fastnet

ROWS = 1024
SIZE = 64
WARMUP_ROUNDS = 20
#: Net growth allowed whatever the count: the loop's own few objects. One
#: byte kept per datagram would be a megabyte over the default million.
FIXED_OVERHEAD = 4096


def resident_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def one_round(sender, receiver, outgoing, incoming, address) -> int:
    """Send one batch, receive it back; return how many came back."""
    sent = sender.send_batch(outgoing, address)
    got = 0
    while got < sent:
        got += receiver.recv_batch(incoming, timeout=2.0)
    return got


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datagrams", type=int, default=1_000_000)
    parser.add_argument("--backend", default="cython", choices=fastnet.available_backends())
    args = parser.parse_args(argv)
    if args.datagrams < ROWS:
        parser.error(f"--datagrams must be at least {ROWS}")

    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=args.backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=args.backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.set_buffers(rcvbuf=8 << 20)
        address = receiver.getsockname()
        outgoing = fastnet.Batch(ROWS, SIZE)
        outgoing.data[:] = 0x5A
        outgoing.lengths[:] = SIZE
        outgoing.count = ROWS
        incoming = fastnet.Batch(ROWS, SIZE)

        for _ in range(WARMUP_ROUNDS):
            one_round(sender, receiver, outgoing, incoming, address)

        rounds = -(-args.datagrams // ROWS)  # at least --datagrams
        gc.collect()
        tracemalloc.start()
        snapshot_before = tracemalloc.take_snapshot()  # before the count: not in it
        rss_before = resident_kib()
        traced_before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        received = 0
        for _ in range(rounds):
            received += one_round(sender, receiver, outgoing, incoming, address)
        elapsed = time.perf_counter() - started
        traced_after, traced_peak = tracemalloc.get_traced_memory()
        snapshot_after = tracemalloc.take_snapshot()
        rss_after = resident_kib()
        tracemalloc.stop()

    sent = rounds * ROWS
    growth = traced_after - traced_before
    print(
        f"backend {args.backend}: {sent:,} datagrams of {SIZE} B sent and {received:,} "
        f"received in {rounds:,} batch calls each way ({elapsed:.2f} s, with tracemalloc on)"
    )
    print(
        f"tracemalloc: {traced_before:,} B before, {traced_after:,} B after: "
        f"net {growth:+,} B = {growth / sent:+.6f} B per datagram"
    )
    print(
        f"tracemalloc: peak {traced_peak - traced_before:+,} B above the start "
        f"(temporaries of one call, the same for any count)"
    )
    print(
        f"resident memory: {rss_before:,} KiB before, {rss_after:,} KiB after "
        f"({rss_after - rss_before:+,} KiB)"
    )
    top = [stat for stat in snapshot_after.compare_to(snapshot_before, "lineno") if stat.size_diff][:5]
    if top:
        print("largest net changes by line (tracemalloc's own bookkeeping included):")
        for stat in top:
            print(f"  {stat}")
    if received != sent:
        print(f"FAIL: {sent - received} datagrams did not come back")
        return 1
    if growth > FIXED_OVERHEAD:
        print(f"FAIL: memory grew by more than the fixed {FIXED_OVERHEAD} B of the loop itself")
        return 1
    print("OK: nothing is allocated per datagram in the steady state")
    return 0


if __name__ == "__main__":
    sys.exit(main())
