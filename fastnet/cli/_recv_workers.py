"""``fastnet recv --workers N``: N processes receive on one address (SO_REUSEPORT).

The parent binds the N sockets of the group (fastnet/receive/fanout.py) and hands
one to each worker process, which runs a Receiver on it with the same
options as a single ``fastnet recv``. Workers add what they receive to one
shared counter (for ``--count`` and the status line); at the end (``--count``,
``--duration``, Ctrl-C, or a worker failing) the parent asks them all to
stop, and each drains its Receiver and reports its stats. The summary adds
them up (fastnet.receive.fanout.merge_stats) and lists each worker's datagrams: the
kernel's spread, by a hash of the source and destination address and port,
so one sender always lands on the same worker.
"""

from __future__ import annotations

import sys
import time
import warnings

from ._bind import notice_if_wildcard
from ._recv_loop import Run
from ._recv_options import receiver_options
from ._recv_report import fail, where

#: How often the parent checks --count, --duration and the workers.
POLL_S = 0.05
#: Longest wait for the workers' Receivers to start.
READY_TIMEOUT_S = 60.0
#: How often a worker checks for the stop request while nothing arrives.
WORKER_POLL_S = 0.1
#: Per-worker keys that are for the parent only, not for the report.
_PRIVATE_KEYS = ("first_timestamp", "last_timestamp", "warnings")


def worker_loop(sock, should_stop, options, counter, started) -> dict:
    """One worker: a Receiver on ``sock`` until ``should_stop()``; its stats.

    Runs in a worker process (fastnet.receive.fanout.FanOut). ``counter`` and
    ``started`` are shared ``multiprocessing.Value``s: every worker adds
    its datagrams to the first, and 1 to the second once its capture
    thread runs.
    """
    import fastnet

    from ..receive.receiver import Receiver

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", fastnet.BufferSizeWarning)
        rx = Receiver._from_socket(sock, **options)
    first = last = None

    def took(batch):
        nonlocal first, last
        last = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
        if first is None:
            first = last
        with counter.get_lock():
            counter.value += batch.count

    rx.start()
    with started.get_lock():
        started.value += 1
    try:
        while not should_stop():
            try:
                took(rx.get(timeout=WORKER_POLL_S))
            except TimeoutError:
                continue
        rx.stop()
        for batch in rx:  # what was captured before the stop is counted too
            took(batch)
    finally:
        rx.close()
    stats = rx.stats
    report = dict(
        stats.as_dict(),
        accounted=stats.accounted,
        backend=rx.backend,
        warnings=[str(warning.message) for warning in caught],
    )
    if first is not None:
        report.update(first_timestamp=first, last_timestamp=last)
    return report


def run_workers(args) -> int:
    import multiprocessing

    import fastnet

    from ..receive.fanout import FanOut, FanOutError, merge_stats

    # Shared values must come from the context FanOut starts its workers with.
    context = multiprocessing.get_context("spawn")
    counter, started = context.Value("q", 0), context.Value("i", 0)
    try:
        options = receiver_options(args)
        fan = FanOut(
            args.address,
            args.workers,
            worker_loop,
            loop_args=(options, counter, started),
            backend=args.backend,
        )
    except (ValueError, TypeError, OSError, ImportError) as exc:
        return fail(f"cannot receive on {where(args.address)}: {exc}", 2)
    except FanOutError as exc:
        return fail(f"the workers did not start: {str(exc).strip().splitlines()[-1]}", 1)
    notice_if_wildcard("recv", fan.address)
    engine = args.backend or fastnet.backend
    run = Run(args, {"packets": 0})
    interrupted = False
    error = None
    seen = [0]

    def take(wait):
        """Datagrams the workers counted since the last look; 0 once they stopped."""
        if not fan.running:
            return 0
        time.sleep(min(POLL_S, wait))
        now = counter.value
        taken, seen[0] = now - seen[0], now
        return taken or None

    try:
        # The sockets queue datagrams from the moment they are bound, but
        # only up to their buffer: say "receiving" once every worker reads.
        ready_by = time.monotonic() + READY_TIMEOUT_S
        while started.value < args.workers and fan.running and time.monotonic() < ready_by:
            time.sleep(POLL_S)
        print(
            f"receiving on {where(fan.address)} ({args.workers} workers, {engine} engine)",
            file=sys.stderr,
            flush=True,
        )
        run.loop(take, lambda: {"packets": counter.value})
    except KeyboardInterrupt:
        interrupted = True
    try:
        fan.stop()
    except FanOutError as exc:
        # Its traceback's last line says what went wrong, in one line.
        error = str(exc).strip().splitlines()[-1]
    reports = [report for report in fan.worker_stats if report is not None]
    if not reports:
        return fail(f"receiving failed: {error}", 1)
    stats = merge_stats(reports)
    run.meter.first, run.meter.last = stats.get("first_timestamp"), stats.get("last_timestamp")
    for message in dict.fromkeys(stats.get("warnings", [])):
        print(f"fastnet recv: warning: {message}", file=sys.stderr)
    for key in _PRIVATE_KEYS + ("workers",):
        stats.pop(key, None)
    per_worker = [None if report is None else report["packets"] for report in fan.worker_stats]
    run.report(
        stats,
        interrupted,
        json_extra=dict(
            proto="udp", address=list(fan.address), workers=args.workers, worker_packets=per_worker
        ),
        summary_extra=dict(workers=per_worker),
    )
    if error is not None:
        return fail(f"receiving failed: {error}", 1)
    return 130 if interrupted else 0
