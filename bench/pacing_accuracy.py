"""Pacing accuracy of fastnet.Sender: achieved rate against the target, and CPU used.

For each target rate the Sender sends for ``--seconds`` to a loopback socket
that nobody reads (no receiver cost in the measurement); the achieved rate is
``stats.sent / stats.elapsed`` (elapsed runs from the first send call to the
end of the last). CPU is the process CPU time over wall time, so a paced
sender that sleeps shows a small share and a busy-spinning one 100 %.

    python bench/pacing_accuracy.py                        # default rates, both engines
    python bench/pacing_accuracy.py --pps 1000 100000 --bps 1e9 --backend cython
    python bench/pacing_accuracy.py --pps 2000 20000 --bps 8e6 --seconds 0.5 --tolerance 0.2

``--tolerance F`` makes it a check: exit status 1 if a paced rate's achieved
value is off its target by more than the fraction F (on an idle machine; the
test suite checks the pacing schedule on a virtual clock instead, since its
machines are shared).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fastnet  # noqa: E402


def measure(backend, size, seconds, pps=None, bps=None, burst=None):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        with fastnet.Sender(sink.getsockname(), pps=pps, bps=bps, burst=burst, backend=backend) as sender:
            rows = (
                1024
                if pps is None and bps is None
                else max(1, min(1024, int((pps or bps / (8 * size)) * 0.01)))
            )
            batch = fastnet.Batch(rows, size)
            batch.lengths[:] = size
            batch.count = rows
            cpu = time.process_time()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sender.send_batch(batch)
            cpu = time.process_time() - cpu
            stats = sender.stats
            return stats, cpu / stats.elapsed if stats.elapsed else 0.0, sender.burst
    finally:
        sink.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pps", type=float, nargs="*", default=[100, 1_000, 10_000, 100_000, 500_000])
    parser.add_argument("--bps", type=float, nargs="*", default=[100e6, 1e9])
    parser.add_argument("--size", type=int, default=1000, help="payload bytes")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--burst", type=int, default=None)
    parser.add_argument("--backend", nargs="+", default=fastnet.available_backends())
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        metavar="F",
        help="exit 1 if a paced rate is off its target by more than F (0.2: 20 %%)",
    )
    args = parser.parse_args(argv)
    off = []
    print(f"{args.size} B payloads, {args.seconds:g} s per rate; error = achieved/target - 1")
    print(
        f"{'backend':8} {'target':>14} {'achieved':>14} {'error':>8} {'sent':>10} "
        f"{'burst':>6} {'calls':>8} {'cpu':>6}"
    )
    for backend in args.backend:
        cases = [("pps", rate) for rate in args.pps] + [("bps", rate) for rate in args.bps]
        cases.append(("max", None))
        for kind, rate in cases:
            stats, cpu, burst = measure(
                backend,
                args.size,
                args.seconds,
                pps=rate if kind == "pps" else None,
                bps=rate if kind == "bps" else None,
                burst=args.burst,
            )
            if kind == "pps":
                target, achieved, unit = rate, stats.pps, "pps"
            elif kind == "bps":
                target, achieved, unit = rate, stats.bps, "bit/s"
            else:
                target, achieved, unit = None, stats.pps, "pps"
            error = f"{achieved / target - 1:+.2%}" if target else "max"
            shown = f"{target:,.0f} {unit}" if target else "unpaced"
            print(
                f"{backend:8} {shown:>14} {f'{achieved:,.0f}':>14} {error:>8} "
                f"{stats.sent:>10,} {burst:>6} {stats.calls:>8,} {cpu:>6.0%}"
            )
            if target and args.tolerance is not None and abs(achieved / target - 1) > args.tolerance:
                off.append(f"{backend} {shown}: {error}")
    if off:
        print(f"off target by more than {args.tolerance:.0%}: {'; '.join(off)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
