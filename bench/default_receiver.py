"""A default ``fastnet recv --seq`` against ``fastnet send`` at 200,000 datagrams/s of 1 KiB.

    python bench/default_receiver.py [--runs 3] [--pps 200000] [--seconds 3] [--size 1024]

The first-minutes case: the two commands README users run first, with the
receiver's defaults (no --rcvbuf, --slot-size or --ring-size). For each run it
prints what was sent and received, the kernel's drops, the losses by sequence
number, the receive buffer the kernel granted, and the receiver's peak
resident memory (ru_maxrss of its process). Loopback only; every run ends by
itself (the receiver stops 3 s after the sender's end).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time


def fastnet_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fastnet", *args]


def one_run(pps: int, seconds: float, size: int) -> dict:
    receiver = subprocess.Popen(
        fastnet_command("recv", "127.0.0.1:0", "--seq", "--json", "--duration", str(seconds + 3)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([receiver.stderr], [], [], 30)
    if not ready:
        receiver.kill()
        raise SystemExit("the receiver did not start")
    first = receiver.stderr.readline()
    port = first.split()[2].rpartition(":")[2]
    sent = subprocess.run(
        fastnet_command(
            "send",
            f"127.0.0.1:{port}",
            "--pps",
            str(pps),
            "--duration",
            str(seconds),
            "--size",
            str(size),
            "--json",
        ),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    out = receiver.stdout.read()
    _, status, usage = os.wait4(receiver.pid, 0)
    receiver.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads(out)
    return {
        "sent": json.loads(sent.stdout)["sent"],
        "received": report["packets"],
        "kernel_drops": report["kernel_drops"],
        "seq_lost": report["seq_lost"],
        "rcvbuf": report.get("rcvbuf", 0),  # (older versions did not report it)
        "max_rss_mib": usage.ru_maxrss / 1024,
        "diagnosis": report.get("diagnosis", []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pps", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    print("run      sent  received  kernel drops  seq lost  rcvbuf (kernel)  receiver max RSS")
    for run in range(1, args.runs + 1):
        row = one_run(args.pps, args.seconds, args.size)
        print(
            f"{run:3d} {row['sent']:9,d} {row['received']:9,d} {row['kernel_drops']:13,d} "
            f"{row['seq_lost']:9,d} {row['rcvbuf'] / (1 << 20):12.1f} MiB {row['max_rss_mib']:13.1f} MiB"
        )
        for sentence in row["diagnosis"]:
            print("    why:", sentence)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
