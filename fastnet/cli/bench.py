"""``fastnet bench``: UDP throughput on loopback, per backend and datagram size.

For every (backend, size) a receiver process and a sender process run on
127.0.0.1; the sender sends as fast as it can for ``--duration`` seconds, the
receiver counts until the sender is done and its queue has drained. The
machinery is in ``fastnet._bench``; this module parses the arguments and
prints. ``--proto tcp`` measures length-prefixed frames over one TCP
connection instead (fastnet/_bench/tcp.py), in the same tables and JSON.
``--find-rate`` searches each receiver's highest loss-free rate instead
(fastnet/_bench/find_rate.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time

from fastnet._bench import BACKENDS, DEFAULT_SIZES, MAX_DATAGRAM, OPTIONAL_BACKENDS
from fastnet._bench import find_rate as _find_rate
from fastnet._bench import tcp as _tcp

from ._args import choice_of, comma_separated, positive_float, positive_int

#: Seconds of sending per row: by default, and with --quick.
DEFAULT_DURATION = 2.0
QUICK_DURATION = 0.15
#: Rounds of every row (--repeat): by default and with --quick.
DEFAULT_REPEATS = 3
QUICK_REPEATS = 3
#: --quick's sizes when --sizes is not given: with its repeats, the whole
#: run stays under 30 s on two cores, start-up included.
QUICK_SIZES = (64, 1024)
#: Most rounds accepted, so every run is bounded.
MAX_REPEATS = 100
#: Longest --duration accepted, so every run is bounded.
MAX_DURATION = 600.0


def duration_seconds(text: str) -> float:
    value = positive_float(text)
    if value > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{text!r} is over the {MAX_DURATION:.0f} s limit")
    return value


def repeat_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_REPEATS:
        raise argparse.ArgumentTypeError(f"{text!r} is over the limit of {MAX_REPEATS} rounds")
    return value


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure UDP (or TCP) throughput on loopback for each backend",
        description="Measure UDP throughput on 127.0.0.1 for each backend and datagram "
        "size: a receiver and a sender process per row. Prints a receiver-side "
        "and a sender-side table. --proto tcp: framed messages over TCP.",
    )
    names = choice_of(BACKENDS + OPTIONAL_BACKENDS)
    parser.add_argument(
        "--proto",
        choices=("udp", "tcp"),
        default="udp",
        help="udp (default): datagrams; tcp: length-prefixed frames over one "
        "connection, on the fastnet engines",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_DURATION} s per row, sizes {','.join(map(str, QUICK_SIZES))}, "
        f"{QUICK_REPEATS} rounds (unless --duration, --sizes or --repeat say otherwise)",
    )
    parser.add_argument(
        "--repeat",
        type=repeat_count,
        metavar="N",
        help=f"measure every row N times, in interleaved rounds (default {DEFAULT_REPEATS}); "
        "figures are medians with their range",
    )
    parser.add_argument(
        "--duration",
        type=duration_seconds,
        metavar="S",
        help=f"seconds of sending per row (default {DEFAULT_DURATION})",
    )
    parser.add_argument(
        "--sizes",
        type=comma_separated(positive_int),
        metavar="N,N",
        help=f"payload sizes in bytes (default "
        f"{','.join(map(str, DEFAULT_SIZES))}; with --proto tcp "
        f"{','.join(map(str, _tcp.DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--backends",
        type=comma_separated(names),
        metavar="NAME,NAME",
        help=f"rows to measure, from {', '.join(BACKENDS)} (default: all; "
        f"with --proto tcp: {', '.join(_tcp.BACKENDS)}), and "
        f"{', '.join(OPTIONAL_BACKENDS)} (only when named)",
    )
    fixed = parser.add_mutually_exclusive_group()
    fixed.add_argument(
        "--sender", type=names, metavar="NAME", help="use this sender for every row, to compare receivers"
    )
    fixed.add_argument(
        "--receiver", type=names, metavar="NAME", help="use this receiver for every row, to compare senders"
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="senders connect(2) their socket and send without an address",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin sender and receiver to two different CPUs",
    )
    parser.add_argument(
        "--find-rate",
        action="store_true",
        help="instead of flooding, search each receiver's highest rate with nothing lost, "
        "under a paced sender (the C GSO sender where it can run)",
    )
    parser.add_argument(
        "--window",
        type=duration_seconds,
        metavar="S",
        help=f"--find-rate: seconds per probe (default {_find_rate.DEFAULT.window_s:g}, "
        f"--quick {_find_rate.QUICK.window_s:g})",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="also draw the results (needs the 'plot' extra: matplotlib)"
    )

    def one_line_error(message):
        parser.exit(2, f"fastnet bench: error: {message}\n")

    parser.error = one_line_error
    parser.set_defaults(func=functools.partial(run, parser))


def _check_output_path(parser, option: str, path) -> None:
    if path is None:
        return
    if os.path.isdir(path):
        parser.error(f"{option} {path!r} is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        parser.error(f"{option} {path!r}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        parser.error(f"{option} {path!r}: directory {directory!r} is not writable")


class _Progress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, duration: float, stream=sys.stderr):
        self.total = total
        self.duration = duration
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()

    def __call__(self, index: int, job) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        per_row = elapsed / index if index else self.duration + 0.5
        left = per_row * (self.total - index)
        pair = job.backend if job.sender == job.receiver else f"{job.sender} -> {job.receiver}"
        self.stream.write(
            f"\r\x1b[K[{index + 1}/{self.total}] {job.size} B  {pair}   (about {left:.0f} s left)"
        )
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _jobs(args):
    from fastnet._bench.runner import Job

    jobs = []
    for size in args.sizes:
        for backend in args.backends:
            jobs.append(
                Job(backend, args.sender or backend, args.receiver or backend, size, connect=args.connect)
            )
    return jobs


def _headline(settings: dict, machine: dict) -> str:
    cpus = settings["cpus"]
    pinned = f"sender on CPU {cpus['sender']}, receiver on CPU {cpus['receiver']}" if cpus else "not pinned"
    what = "UDP" if settings["proto"] == "udp" else "TCP, length-prefixed frames,"
    rounds = settings["repeat"]
    rounds_text = f"{rounds} interleaved rounds" if rounds > 1 else "1 round"
    if settings.get("find_rate"):
        how = (
            f"loss-free rate search, paced sender {settings['find_rate']['sender']}, "
            f"{settings['find_rate']['window_s']:g} s per probe"
        )
    else:
        how = f"{settings['duration_s']:g} s per row, {rounds_text}"
    if settings.get("connect"):
        how += ", connected senders"
    return (
        f"fastnet bench: {what} on 127.0.0.1, {how}, {pinned}\n"
        f"{machine['cpu_model'] or 'unknown CPU'}, {machine['usable_cpus']} CPUs, "
        f"{machine['os']} {machine['kernel']}, Python {machine['python']}, "
        f"numpy {machine['numpy']}, fastnet {machine['fastnet']} "
        f"(default backend {machine['backend']})"
    )


def _reader_gone() -> int:
    """stdout's reader went away (``fastnet bench | head``): stop printing, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
    return 1


def _check_proto(parser, args) -> None:
    """Fill in the defaults of ``--proto``, refuse what does not apply to it."""
    if args.proto == "udp":
        args.sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
        args.backends = args.backends or list(BACKENDS)
        over = [size for size in args.sizes if size > MAX_DATAGRAM]
        if over:
            parser.error(f"--sizes {over[0]} is over {MAX_DATAGRAM}, the largest UDP payload over IPv4")
        return
    args.sizes = args.sizes or list(_tcp.DEFAULT_SIZES)
    args.backends = args.backends or list(_tcp.BACKENDS)
    if args.sender or args.receiver:
        parser.error("--sender and --receiver apply to --proto udp only")
    others = [name for name in args.backends if name not in _tcp.BACKENDS]
    if others:
        parser.error(
            f"--proto tcp measures the fastnet engines ({', '.join(_tcp.BACKENDS)}), not {', '.join(others)}"
        )
    if args.find_rate or args.connect:
        parser.error(f"{'--find-rate' if args.find_rate else '--connect'} applies to --proto udp only")
    over = [size for size in args.sizes if size > _tcp.MAX_SIZE]
    if over:
        parser.error(f"--sizes {over[0]} is over {_tcp.MAX_SIZE}, the longest frame (max_frame)")


def run(parser, args) -> int:
    from fastnet._bench import RCVBUF, report
    from fastnet._bench.backends import PACEABLE, Catalog
    from fastnet._bench.machine import describe
    from fastnet._bench.reference import find_compiler
    from fastnet._bench.runner import pick_cpus, run_rounds

    duration = args.duration or (QUICK_DURATION if args.quick else DEFAULT_DURATION)
    repeats = args.repeat or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    _check_proto(parser, args)
    _check_output_path(parser, "--json", args.json)
    _check_output_path(parser, "--plot", args.plot)
    if args.plot:
        from fastnet._bench.plot import plot_unavailable

        missing = plot_unavailable()
        if missing:
            parser.error(missing)

    if args.window is not None and not args.find_rate:
        parser.error("--window applies to --find-rate only")
    if args.find_rate and args.receiver:
        parser.error("--find-rate searches every receiver in --backends; --receiver does not apply")
    if args.find_rate and args.sender and args.sender not in PACEABLE:
        parser.error(f"--find-rate needs a sender that can be paced: {', '.join(PACEABLE)}")

    tcp = args.proto == "tcp"
    fixed = args.sender or args.receiver
    extra = list(PACEABLE) if args.find_rate else ([fixed] if fixed else [])
    catalog = None if tcp else Catalog(list(args.backends) + extra)
    if fixed and catalog is not None and catalog.unavailable(fixed):  # fixed: udp only
        side = "--sender" if args.sender else "--receiver"
        sys.stderr.write(f"fastnet bench: {side} {fixed} cannot run here: {catalog.unavailable(fixed)}\n")
        return 1
    search = None
    if args.find_rate:
        base = _find_rate.QUICK if args.quick else _find_rate.DEFAULT
        search = dataclasses.replace(base, window_s=args.window or base.window_s)
        paced, passed_over = (args.sender, "") if args.sender else _find_rate.pick_sender(catalog)
        if paced is None:
            sys.stderr.write(f"fastnet bench: no sender that can be paced runs here ({passed_over})\n")
            return 1

    # The TCP rows' processes are not pinned (fastnet._bench.tcp_run).
    cpus = None if tcp else pick_cpus(args.pin)
    settings = {
        "proto": args.proto,
        "host": "127.0.0.1",
        "duration_s": duration,
        "repeat": repeats,
        "sizes": args.sizes,
        "backends": args.backends,
        "sender": args.sender,
        "receiver": args.receiver,
        "connect": args.connect,
        "cpus": {"sender": cpus[0], "receiver": cpus[1]} if cpus else None,
        "rcvbuf_requested": None if tcp else RCVBUF,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "find_rate": None,
    }
    if search is not None:
        settings["find_rate"] = {
            "sender": paced,
            "sender_passed_over": passed_over or None,
            "window_s": search.window_s,
            "resolution": search.resolution,
            "max_steps": search.max_steps,
            "max_retries": search.max_retries,
            "max_lag_s": search.max_lag_s,
            "floor_pps": search.floor_pps,
            "max_probes": _find_rate.probe_limit(search),
        }
    machine = describe(find_compiler() if catalog and catalog.reference_binary else None)
    try:
        print(_headline(settings, machine), flush=True)
    except BrokenPipeError:
        return _reader_gone()

    if search is not None:
        return _run_search(args, catalog, cpus, search, paced, settings, machine)
    progress = _Progress(len(args.sizes) * len(args.backends) * repeats, duration)
    try:
        if tcp:
            rows = _tcp.run_rows(args.backends, args.sizes, duration, progress, repeats=repeats)
        else:
            rows = report.build_rows(run_rounds(_jobs(args), catalog, duration, cpus, repeats, progress))
    finally:
        progress.done()
    written = []
    if args.json:
        report.write_json(args.json, report.document(machine, settings, rows))
        written.append(f"JSON written to {args.json}")
    if args.plot:
        from fastnet._bench.plot import write_plot

        write_plot(args.plot, rows, _headline(settings, machine).splitlines()[0])
        written.append(f"Plot written to {args.plot}")
    try:
        print()
        print(
            report.format_tables(
                rows,
                fixed_sender=args.sender,
                fixed_receiver=args.receiver,
                unit="frames" if tcp else "datagrams",
            )
        )
        if written:
            print("\n" + "\n".join(written))
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()  # the JSON and plot files are written already
    return 1 if any(row["status"] == "failed" for row in rows) else 0


def _run_search(args, catalog, cpus, search, sender, settings, machine) -> int:
    """--find-rate: the loss-free search for every receiver, its table, JSON and plot."""
    from fastnet._bench import report

    status = sys.stderr if sys.stderr.isatty() else None

    def progress(line: str) -> None:
        if status is not None:
            status.write(f"\r\x1b[K{line}")
            status.flush()

    try:
        entries = _find_rate.run_search(
            catalog, args.backends, args.sizes, sender, cpus, search, progress, args.connect
        )
    finally:
        if status is not None:
            status.write("\r\x1b[K")
            status.flush()
    written = []
    if args.json:
        report.write_json(args.json, report.document(machine, settings, [], entries))
        written.append(f"JSON written to {args.json}")
    if args.plot:
        from fastnet._bench.plot import write_plot

        write_plot(args.plot, [], _headline(settings, machine).splitlines()[0], entries)
        written.append(f"Plot written to {args.plot}")
    try:
        print()
        print(_find_rate.format_lossless(entries, search, settings["find_rate"]["sender_passed_over"] or ""))
        if written:
            print("\n" + "\n".join(written))
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()
    return 1 if any(entry["status"] == "failed" for entry in entries) else 0
