"""End-to-end check of the Receiver's loss accounting at full speed.

A sender in this process sends N numbered datagrams (64-bit big-endian
counter at offset 0) as fast as this machine allows to a Receiver in a
second process, whose consumer only counts. When the sender is done and the
receiver has gone idle, the receiver's final stats are printed with the check
that matters:

    sent == packets + kernel_drops + ring_overruns (+ unread)

Normal run (defaults: 1.5 M datagrams of 1024 B, large receive buffer):

    python bench/receiver_run.py
    python bench/receiver_run.py --backend python

Overload on purpose (small receive buffer, consumer sleeping per batch), so
that the kernel drops (block) or the ring overruns (drop):

    python bench/receiver_run.py --overload
    python bench/receiver_run.py --overload --on-full drop

Exit status 0 when the counts add up, 1 when they do not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

import fastnet


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_500_000, help="datagrams to send")
    parser.add_argument("--size", type=int, default=1024, help="datagram size in bytes")
    parser.add_argument("--backend", default=None, help="receiver engine (default fastnet.backend)")
    parser.add_argument("--sender-backend", default=None, help="sender engine")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--ring-size", type=int, default=64)
    parser.add_argument(
        "--rcvbuf",
        type=int,
        default=None,
        help="receive buffer to ask for (default 32 MiB; 64 KiB with --overload)",
    )
    parser.add_argument("--on-full", choices=("block", "drop"), default="block")
    parser.add_argument(
        "--consumer-delay",
        type=float,
        default=None,
        help="seconds the consumer sleeps per batch (default 0; 2 ms with --overload)",
    )
    parser.add_argument(
        "--overload", action="store_true", help="small receive buffer and a slow consumer, to force drops"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--role", choices=("main", "receiver"), default="main", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rcvbuf is None:
        args.rcvbuf = 64 * 1024 if args.overload else 32 << 20
    if args.consumer_delay is None:
        args.consumer_delay = 0.002 if args.overload else 0.0
    return args


# -- the receiving process ------------------------------------------------------
def run_receiver(args) -> int:
    sender_done = threading.Event()

    def wait_for_done():
        sys.stdin.readline()  # the main process writes one line when the sender is done
        sender_done.set()

    rx = fastnet.Receiver(
        ("127.0.0.1", 0),
        slot_size=args.size,
        batch_size=args.batch_size,
        ring_size=args.ring_size,
        rcvbuf=args.rcvbuf,
        on_full=args.on_full,
        seq=fastnet.SeqField(),
        backend=args.backend,
    )
    with rx:
        print(json.dumps({"port": rx.address[1], "rcvbuf": rx.rcvbuf, "backend": rx.backend}), flush=True)
        threading.Thread(target=wait_for_done, daemon=True).start()
        taken = 0
        first = last = None
        deadline = None
        while True:
            try:
                batch = rx.get(timeout=0.5)
            except TimeoutError:
                # Idle for 0.5 s after the sender finished: everything has arrived.
                if sender_done.is_set():
                    break
                continue
            last = time.perf_counter()
            first = first or last
            taken += batch.count
            if args.consumer_delay:
                time.sleep(args.consumer_delay)
            if sender_done.is_set():
                deadline = deadline or time.monotonic() + 120
                if time.monotonic() > deadline:
                    break
        rx.stop()
        for batch in rx:
            taken += batch.count
    report = rx.stats.as_dict()
    report.update(taken=taken, seconds=(last - first) if first and last else 0.0)
    print(json.dumps(report), flush=True)
    return 0


# -- the sending process --------------------------------------------------------
def send_all(sock, address, count, size, batch_size=1024):
    batch = fastnet.Batch(batch_size, size)
    batch.lengths[:] = size
    extra = {"gso": True}
    sent = 0
    started = time.perf_counter()
    while sent < count:
        n = min(batch_size, count - sent)
        numbers = np.arange(sent, sent + n, dtype=">u8")
        batch.data[:n, :8] = numbers.view(np.uint8).reshape(n, 8)
        batch.count = n
        sent += sock.send_batch(batch, address, **extra)
    return sent, time.perf_counter() - started, bool(extra)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.role == "receiver":
        return run_receiver(args)
    child_args = [
        sys.executable,
        os.path.abspath(__file__),
        "--role",
        "receiver",
        "--size",
        str(args.size),
        "--batch-size",
        str(args.batch_size),
        "--ring-size",
        str(args.ring_size),
        "--rcvbuf",
        str(args.rcvbuf),
        "--on-full",
        args.on_full,
        "--consumer-delay",
        str(args.consumer_delay),
    ]
    if args.backend:
        child_args += ["--backend", args.backend]
    child = subprocess.Popen(child_args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        hello = json.loads(child.stdout.readline())
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=args.sender_backend) as sock:
            sock.set_buffers(sndbuf=4 << 20)
            sent, seconds, gso = send_all(sock, ("127.0.0.1", hello["port"]), args.count, args.size)
        child.stdin.write("done\n")
        child.stdin.flush()
        stats = json.loads(child.stdout.readline())
        child.wait(timeout=60)
    finally:
        child.kill()
    three = stats["packets"] + stats["kernel_drops"] + stats["ring_overruns"]
    result = dict(
        sent=sent,
        send_seconds=seconds,
        send_rate=sent / seconds,
        gso=gso,
        receiver_backend=hello["backend"],
        rcvbuf=hello["rcvbuf"],
        stats=stats,
        adds_up=sent == three,
        adds_up_with_unread=sent == three + stats["unread"],
    )
    if args.json:
        print(json.dumps(result))
    else:
        rate = stats["packets"] / stats["seconds"] if stats["seconds"] else 0.0
        print(
            f"sender:   {sent:,} datagrams of {args.size} B in {seconds:.3f} s "
            f"({sent / seconds:,.0f}/s, {8 * sent * args.size / seconds / 1e9:.2f} Gbit/s"
            f"{', gso' if gso else ''})"
        )
        print(
            f"receiver: {hello['backend']} engine, rcvbuf {hello['rcvbuf']:,} B, "
            f"on_full={args.on_full}, consumer delay {args.consumer_delay * 1e3:g} ms/batch; "
            f"{stats['packets']:,} datagrams at {rate:,.0f}/s"
        )
        for key in (
            "packets",
            "kernel_drops",
            "ring_overruns",
            "ring_overrun_batches",
            "unread",
            "truncated",
            "seq_lost",
            "seq_gaps",
            "seq_reordered",
            "seq_duplicates",
        ):
            print(f"  {key:22} {stats[key]:>14,}")
        print(f"sent == packets + kernel_drops + ring_overruns: {result['adds_up']} ({sent:,} vs {three:,})")
        if not result["adds_up"]:
            print(f"  ... + unread: {result['adds_up_with_unread']}")
    return 0 if result["adds_up_with_unread"] else 1


if __name__ == "__main__":
    sys.exit(main())
