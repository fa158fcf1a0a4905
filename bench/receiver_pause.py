"""A Receiver whose consumer pauses, and a Receiver under a flood, against a plain C loop.

``pause``: a C sender paced at RATE datagrams/s of 1024 B (GSO) for SECONDS
sends to ``Receiver(slot_size=1024, batch_size=1024, ring_size=64,
rcvbuf=4 MiB)`` in a second process, whose consumer pauses for 150 ms after
every 120,000 datagrams, as ``time.sleep`` (GIL free) or as pure-Python
work (GIL held). Prints what was received and what the kernel dropped, per
run, and the medians:

    python bench/receiver_pause.py pause --runs 3
    python bench/receiver_pause.py pause --runs 3 --backend python

``--before DIR`` alternates each run with the same run against the fastnet
found in DIR (a checkout built in place, e.g. the commit before a change):
A/B side by side, on the same machine at the same time.

``flood``: a C GSO sender on CPU 0 sends as fast as it can for SECONDS; the
receiver, on CPU 1, is either a plain C recvmmsg loop into a ring of the
same rows (bench/capture_peers.c) or a Receiver whose consumer only counts.
Runs alternate (C, fastnet, C, fastnet ...); prints what each received (per
second, and as a share of what was sent) and its CPU time per datagram
received, and medians:

    python bench/receiver_pause.py flood --runs 3
    python bench/receiver_pause.py flood --runs 3 --gro

``touch``: what writing 64 MiB costs the first time (page faults) and the
second, on this machine.

``alloc``: a Receiver in this process takes COUNT datagrams from a C flood
with tracemalloc on; prints the traced memory after the first batches and
at the end (steady state allocates nothing per batch if they match).

The C peers are compiled from bench/capture_peers.c with ``cc -O2`` on
first use (into the system's temporary directory).
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

import fastnet

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_SOURCE = os.path.join(HERE, "capture_peers.c")
SIZE = 1024


def peers_binary() -> str:
    binary = os.path.join(tempfile.gettempdir(), f"fastnet-capture-peers-{os.getuid()}")
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(PEERS_SOURCE):
        subprocess.run(["cc", "-O2", "-o", binary, PEERS_SOURCE], check=True)
    return binary


def pinned(cpu):
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the receiving process -----------------------------------------------------------
def busy(seconds: float) -> None:
    """Pure-Python work: holds the GIL (as any such work, but for the 5 ms switches)."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def schedstat(tid):
    """(ns the thread ran, ns it waited runnable for a CPU): /proc/.../schedstat, or zeros."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            run_ns, wait_ns, _ = (int(field) for field in f.read().split())
    except (OSError, ValueError):
        return 0, 0
    return run_ns, wait_ns


def run_receiver(args) -> int:
    """Receive until a line comes on stdin and nothing more arrives; print the stats as JSON."""
    import selectors

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # the whole process: capture and consumer
    rx = fastnet.Receiver(
        0,
        backend=args.backend,
        slot_size=SIZE,
        batch_size=1024,
        ring_size=64,
        rcvbuf=args.rcvbuf,
        gro=args.gro,
    )
    if args.prefault:
        # Write the receiver's buffers once before the stream starts, so that
        # no first write of a page (a page fault; slow in a VM) lands in it.
        rings = [rx._rows] if hasattr(rx, "_rows") else [*rx._free, rx._spare]
        for batch in rings:
            if batch is not None:
                batch.data.fill(0)
    stdin = selectors.DefaultSelector()
    stdin.register(sys.stdin, selectors.EVENT_READ)
    with rx:
        if args.capture_nice is not None:
            # setpriority(2) on a thread id sets that thread's nice value alone.
            os.setpriority(os.PRIO_PROCESS, rx._thread.native_id, args.capture_nice)
        if args.capture_cpu is not None:
            # The capture thread alone (works for a Receiver without cpu= too).
            os.sched_setaffinity(rx._thread.native_id, {args.capture_cpu})
        print("ready", rx.address[1], flush=True)
        cpu0 = cpu_seconds()
        taken = 0
        next_pause = args.pause_every
        done_since = None
        while True:
            try:
                taken += rx.get(timeout=0.1).count
                if done_since is not None:
                    done_since = time.monotonic()
            except TimeoutError:
                pass
            if args.pause and taken >= next_pause:
                next_pause += args.pause_every
                if args.pause == "sleep":
                    time.sleep(args.pause_s)
                else:
                    busy(args.pause_s)
            if done_since is None and stdin.select(0):
                done_since = time.monotonic()
            if done_since is not None and time.monotonic() - done_since > 0.3:
                break
        cpu = cpu_seconds() - cpu0
        stats = rx.stats
        run_ns, wait_ns = schedstat(rx._thread.native_id)
    result = stats.as_dict()
    result.update(
        taken=taken,
        cpu_s=cpu,
        accounted=stats.accounted,
        capture_run_s=run_ns / 1e9,
        capture_wait_s=wait_ns / 1e9,
    )
    print(json.dumps(result), flush=True)
    return 0


# -- the main process ---------------------------------------------------------------------
def start_receiver(argv, cpu=None, fastnet_dir=None):
    env = None
    if fastnet_dir is not None:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(fastnet_dir))
    child = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=pinned(cpu), env=env
    )
    line = child.stdout.readline().split()
    if not line or line[0] != "ready":
        child.kill()
        raise RuntimeError(f"the receiver did not start: {line}")
    return child, int(line[1])


def finish_receiver(child) -> dict:
    child.stdin.write("done\n")
    child.stdin.flush()
    out = child.stdout.readline()
    child.wait(timeout=60)
    return json.loads(out)


def send(port, rate, seconds, cpu=None) -> dict:
    run = subprocess.run(
        [peers_binary(), "send", str(SIZE), str(port), str(rate), str(seconds), "gso"],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=pinned(cpu),
    )
    return json.loads(run.stdout)


def fastnet_receiver_argv(args, **extra):
    argv = [sys.executable, os.path.abspath(__file__), "receiver", "--rcvbuf", str(args.rcvbuf)]
    if args.backend:
        argv += ["--backend", args.backend]
    if args.gro:
        argv.append("--gro")
    if args.capture_nice is not None:
        argv += ["--capture-nice", str(args.capture_nice)]
    if args.capture_cpu is not None:
        argv += ["--capture-cpu", str(args.capture_cpu)]
    if args.prefault:
        argv.append("--prefault")
    for key, value in extra.items():
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def pause(args) -> int:
    rows = []
    versions = ["before", "this"] if args.before else ["this"]
    for run in range(args.runs):
        for mode, version in [(m, v) for m in ("sleep", "busy") for v in versions]:
            child, port = start_receiver(
                fastnet_receiver_argv(args, pause=mode, pause_every=args.pause_every, pause_s=args.pause_s),
                fastnet_dir=args.before if version == "before" else None,
            )
            # With --capture-cpu, the sender goes on --sender-cpu (else anywhere).
            sender_cpu = args.sender_cpu if args.capture_cpu is not None else None
            sent = send(port, args.rate, args.seconds, cpu=sender_cpu)["sent"]
            got = finish_receiver(child)
            row = dict(
                run=run + 1,
                version=version,
                pause=mode,
                sent=sent,
                received=got["packets"] / sent,
                kernel_drops=got["kernel_drops"] / sent,
                lost=sent - got["packets"],
                ring_overruns=got["ring_overruns"],
                unread=got["unread"],
                accounted=got["accounted"] == sent,
                capture_wait_s=got["capture_wait_s"],
            )
            rows.append(row)
            print(
                f"run {row['run']} {version:<6} {mode:<5} sent {sent} received {100 * row['received']:.2f} % "
                f"kernel drops {100 * row['kernel_drops']:.2f} % lost {row['lost']} "
                f"(sum exact: {row['accounted']}; "
                f"capture thread waited {row['capture_wait_s']:.2f} s for a CPU)",
                flush=True,
            )
    for mode, version in [(m, v) for m in ("sleep", "busy") for v in versions]:
        mine = [r for r in rows if r["pause"] == mode and r["version"] == version]
        received = statistics.median(r["received"] for r in mine)
        drops = statistics.median(r["kernel_drops"] for r in mine)
        print(
            f"median {version:<6} {mode:<5} received {100 * received:.2f} % "
            f"kernel drops {100 * drops:.2f} % "
            f"lost {[r['lost'] for r in mine]}"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


SYSCALLS = ("recvmmsg", "poll", "futex")


def counting_syscalls(argv, path):
    """``argv`` under ``perf stat``, counting the system calls of SYSCALLS into ``path``."""
    events = ",".join(f"syscalls:sys_enter_{name}" for name in SYSCALLS)
    return ["perf", "stat", "-x,", "-o", path, "-e", events, "--", *argv]


def syscall_counts(path) -> dict:
    """What counting_syscalls wrote: {name: count}."""
    counts = {}
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[2].startswith("syscalls:sys_enter_"):
                counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
    return counts


def flood(args) -> int:
    rows = []
    perf_out = os.path.join(tempfile.gettempdir(), f"fastnet-flood-syscalls-{os.getpid()}")
    c_argv = [peers_binary(), "recv", str(SIZE), str(64 * 1024), "1024", str(args.rcvbuf)]
    if args.gro:
        c_argv.append("gro")
    kinds = ("c", "before", "fastnet") if args.before else ("c", "fastnet")
    for run in range(args.runs):
        for kind in kinds:
            argv = c_argv if kind == "c" else fastnet_receiver_argv(args, cpu=args.receiver_cpu)
            if args.syscalls:
                argv = counting_syscalls(argv, perf_out)
            child, port = start_receiver(
                argv, cpu=args.receiver_cpu, fastnet_dir=args.before if kind == "before" else None
            )
            sender = send(port, args.flood_rate, args.seconds, cpu=args.sender_cpu)
            sent = sender["sent"]
            got = finish_receiver(child)
            received = got["received"] if kind == "c" else got["packets"]
            row = dict(
                run=run + 1,
                receiver=kind,
                sent=sent,
                received=received / sent,
                received_per_s=received / sender["wall_s"],
                ns_per_datagram=1e9 * got["cpu_s"] / max(received, 1),
            )
            calls = ""
            if args.syscalls:
                for name, count in syscall_counts(perf_out).items():
                    row[f"{name}_per_1000"] = 1000 * count / max(received, 1)
                calls = " calls per 1000 datagrams: " + ", ".join(
                    f"{name} {row[f'{name}_per_1000']:.2f}" for name in SYSCALLS if f"{name}_per_1000" in row
                )
            rows.append(row)
            print(
                f"run {row['run']} {kind:<7} sent {sent} received {received} "
                f"({100 * row['received']:.1f} %, {row['received_per_s'] / 1e6:.3f} M/s) "
                f"cpu {row['ns_per_datagram']:.0f} ns/datagram{calls}",
                flush=True,
            )
    medians = {}
    for kind in kinds:
        mine = [r for r in rows if r["receiver"] == kind]
        medians[kind] = (
            statistics.median(r["received"] for r in mine),
            statistics.median(r["received_per_s"] for r in mine),
            statistics.median(r["ns_per_datagram"] for r in mine),
        )
        calls = ""
        if args.syscalls:
            calls = ", calls per 1000 datagrams: " + ", ".join(
                f"{name} {statistics.median(r.get(f'{name}_per_1000', 0) for r in mine):.2f}"
                for name in SYSCALLS
            )
        print(
            f"median {kind:<7} received {100 * medians[kind][0]:.1f} % of what was sent, "
            f"{medians[kind][1] / 1e6:.3f} M/s, cpu {medians[kind][2]:.0f} ns/datagram{calls}"
        )
    # The sender's own rate depends on the receiver (a datagram the kernel
    # drops costs the sender less than one it queues and wakes a reader
    # for), so the rate received is the figure to compare, not the share.
    for kind in kinds[1:]:
        print(
            f"{kind} / C: received per second x{medians[kind][1] / medians['c'][1]:.3f}, "
            f"cpu per datagram x{medians[kind][2] / medians['c'][2]:.3f}"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


def first_touch(args) -> int:
    """How long writing 64 MiB costs the first time (page faults) and the second."""
    import numpy as np

    memory = np.zeros((65536, 1024), np.uint8)
    for label in ("first", "second"):
        start = time.perf_counter()
        for row in range(0, 65536, 1024):
            memory[row : row + 1024] = 1
        print(f"{label} write of 64 MiB, 1 MiB at a time: {1e3 * (time.perf_counter() - start):.1f} ms")
    return 0


def alloc(args) -> int:
    import tracemalloc

    with fastnet.Receiver(
        0, backend=args.backend, slot_size=SIZE, batch_size=1024, ring_size=64, rcvbuf=args.rcvbuf
    ) as rx:
        sender = subprocess.Popen(
            [peers_binary(), "send", str(SIZE), str(rx.address[1]), "0", "600", "gso"],
            stdout=subprocess.DEVNULL,
        )
        try:
            taken = 0
            while taken < 100_000:  # warm up: every window size, numpy's caches
                taken += rx.get(timeout=5).count
            tracemalloc.start()
            first = tracemalloc.get_traced_memory()[0]
            batches = 0
            while taken < args.count:
                taken += rx.get(timeout=5).count
                batches += 1
            last, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            sender.kill()
            sender.wait()
    print(
        f"{batches} batches ({taken - 100_000} datagrams) traced: {first} B after warm-up, "
        f"{last} B at the end (the batch held then), peak {peak} B"
    )
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("pause", "flood", "alloc", "touch", "receiver"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default=None, help="the Receiver's engine (default fastnet.backend)")
    parser.add_argument("--rate", type=int, default=300_000, help="pause: datagrams per second")
    parser.add_argument("--seconds", type=float, default=None, help="sending time (pause 4, flood 2)")
    parser.add_argument("--rcvbuf", type=int, default=4 << 20)
    parser.add_argument(
        "--flood-rate", type=int, default=0, help="flood: pace the sender instead (datagrams/s, 0: flat out)"
    )
    parser.add_argument("--gro", action="store_true", help="flood: UDP GRO on both receivers")
    parser.add_argument(
        "--syscalls",
        action="store_true",
        help="flood: count each receiver's recvmmsg, poll and futex calls (perf stat, tracepoints)",
    )
    parser.add_argument("--sender-cpu", type=int, default=0)
    parser.add_argument("--receiver-cpu", type=int, default=1)
    parser.add_argument("--count", type=int, default=10_000_000, help="alloc: datagrams to take")
    parser.add_argument("--before", metavar="DIR", help="pause, flood: alternate with the fastnet in DIR")
    parser.add_argument(
        "--capture-cpu",
        type=int,
        default=None,
        metavar="N",
        help="pause: pin the Receiver's capture thread to CPU N, and the sender to --sender-cpu",
    )
    parser.add_argument(
        "--prefault", action="store_true", help="write the Receiver's buffers once before the stream starts"
    )
    parser.add_argument(
        "--capture-nice",
        type=int,
        default=None,
        metavar="N",
        help="nice value of the Receiver's capture thread (below 0 needs CAP_SYS_NICE): "
        "shows what is lost for want of a CPU on a busy machine",
    )
    parser.add_argument("--json", action="store_true")
    # The receiving process's own options.
    parser.add_argument("--pause", choices=("sleep", "busy"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--pause-every", type=int, default=120_000)
    parser.add_argument("--pause-s", type=float, default=0.15)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 4.0 if args.mode == "pause" else 2.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    modes = {"pause": pause, "flood": flood, "alloc": alloc, "touch": first_touch, "receiver": run_receiver}
    return modes[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
