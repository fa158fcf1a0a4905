"""``fastnet recv HOST:PORT``: receive with a Receiver, show rates and losses, summarize.

On a terminal a status line (datagrams/s, Gbit/s, drops, sequence gaps) is
refreshed about twice a second on stderr. At the end (``--count``,
``--duration``, or Ctrl-C) the receiver stops, the batches it had already
captured are taken too, and a summary goes to stdout (``--json``: the final
stats as one JSON object). Exit status: 0, or 130 after Ctrl-C (the summary
is still printed), 1 if receiving failed, 2 for bad arguments or an address
that cannot be bound.

``--out FILE`` records what arrives (.pcap or .npy); a multicast GROUP:PORT
is joined (``--interface``, ``--source``); ``--workers N`` receives in N
processes sharing the port (fastnet/cli/_recv_workers.py); ``--tcp``
accepts one connection and receives length-prefixed frames
(fastnet/cli/_recv_tcp.py).
"""

from __future__ import annotations

import ipaddress

from . import _args
from ._args import byte_size  # noqa: F401 - also part of this command's module
from ._bind import notice_if_wildcard
from ._recv_frames import start_metrics
from ._recv_loop import run_receiver
from ._recv_options import cpu_arg, open_receiver
from ._recv_report import fail, where

DESCRIPTION = __doc__.split("\n\n")[0]

#: Defaults of the UDP-only options (None on the command line: not given).


def add_parser(subparsers) -> None:
    from ..engines import BACKENDS

    parser = subparsers.add_parser(
        "recv", help="receive datagrams and count every loss", description=DESCRIPTION
    )
    parser.add_argument(
        "address",
        nargs="?",
        type=_args.host_port,
        default=(_args.DEFAULT_HOST, _args.DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"address to bind: HOST:PORT, [IPv6]:PORT, a multicast GROUP:PORT, "
        f"or PORT alone for loopback (default {_args.DEFAULT_HOST}:"
        f"{_args.DEFAULT_PORT}; port 0: any free port, printed at start)",
    )
    parser.add_argument(
        "--count", type=_args.positive_int, metavar="N", help="stop after at least N datagrams"
    )
    parser.add_argument("--duration", type=_args.positive_float, metavar="S", help="stop after S seconds")
    parser.add_argument("--json", action="store_true", help="print the final stats as JSON")
    parser.add_argument(
        "--seq",
        action="store_true",
        help="track the 64-bit big-endian counter at offset 0 that "
        "'fastnet send' writes: gaps, lost, reordered, duplicates",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="record what arrives to FILE: .pcap (Wireshark) or .npy (.npy only with --tcp)",
    )
    parser.add_argument(
        "--slot-size",
        type=_args.positive_int,
        metavar="BYTES",
        help="bytes per datagram; longer ones are cut and counted (default: the "
        "listening interface's MTU less the headers, at most 9000)",
    )
    parser.add_argument(
        "--batch-size",
        type=_args.positive_int,
        default=1024,
        metavar="N",
        help="datagrams per batch (default 1024)",
    )
    parser.add_argument(
        "--ring-size",
        type=_args.positive_int,
        metavar="N",
        help="the ring holds N x --batch-size datagrams (default: as many batches as fit 128 MiB, 4 to 64)",
    )
    parser.add_argument(
        "--rcvbuf",
        type=byte_size,
        metavar="BYTES",
        help="socket receive buffer to ask for, e.g. 64M (default: the ring's worth, 4 to 64 MiB)",
    )
    parser.add_argument(
        "--gro",
        action="store_true",
        help="UDP receive offload: keeps up with GSO senders; the kernel's drop "
        "count then counts buffers of up to 64 datagrams (use --seq)",
    )
    parser.add_argument(
        "--on-full",
        choices=("block", "drop"),
        help="when the ring is full: stop reading (the kernel queues, then "
        "drops; the default) or read and discard (counted as ring overruns)",
    )
    parser.add_argument(
        "--interface",
        metavar="IFACE",
        help="with a multicast GROUP:PORT: interface to join on (name, index or address)",
    )
    parser.add_argument(
        "--source",
        metavar="ADDR",
        help="with a multicast GROUP:PORT: receive only from this sender (source-specific join)",
    )
    parser.add_argument(
        "--cpu",
        type=cpu_arg,
        metavar="N",
        help="pin the capture thread to CPU N, e.g. away from the CPUs the NIC's "
        "interrupts or the sender use ('fastnet info' lists the interrupts' CPUs)",
    )
    parser.add_argument(
        "--workers",
        type=_args.positive_int,
        default=1,
        metavar="N",
        help="receive in N processes sharing the port (SO_REUSEPORT: the kernel "
        "spreads senders, not one sender's stream, over them)",
    )
    parser.add_argument(
        "--tcp", action="store_true", help="accept one TCP connection and receive length-prefixed frames"
    )
    parser.add_argument("--backend", choices=tuple(BACKENDS), help="engine (default: fastnet.backend)")
    parser.add_argument(
        "--frames",
        metavar="SPEC",
        help="assemble instrument frames laid out as this TOML/JSON FrameSpec (--out: .h5 or .zarr)",
    )
    parser.add_argument(
        "--frames-in-flight",
        type=_args.positive_int,
        default=8,
        metavar="N",
        help="frames in flight (default 8)",
    )
    parser.add_argument(
        "--max-frame-age",
        type=_args.positive_float,
        metavar="SECONDS",
        help="with --frames: evict a frame still incomplete this long after its first packet "
        "(default: only when newer frames push it out, or at the end)",
    )
    parser.add_argument(
        "--metrics", type=_args.host_port, metavar="HOST:PORT", help="serve the counters to Prometheus here"
    )
    _args.add_framing_arguments(parser, receiving=True)
    parser.set_defaults(func=run)


def _is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_multicast
    except ValueError:
        return False


def _refusal(args):
    """Why these arguments do not go together, or None."""
    from ..capture.reader import format_for_path

    host = args.address[0]
    if args.tcp:
        udp_only = [
            flag
            for flag, given in (
                ("--workers", args.workers > 1),
                ("--ring-size", args.ring_size is not None),
                ("--on-full", args.on_full is not None),
                ("--rcvbuf", args.rcvbuf is not None),
                ("--gro", args.gro),
                ("--interface", args.interface is not None),
                ("--source", args.source is not None),
                ("--cpu", args.cpu is not None),
            )
            if given
        ]
        if udp_only:
            return f"{', '.join(udp_only)} do not apply to --tcp"
    else:
        framing = _args.framing_flags_given(args)
        if framing:
            return f"{', '.join(framing)} apply to --tcp only"
        if args.out is not None and args.workers > 1:
            return "--out records one receiver; with --workers each process would need a file of its own"
        if args.cpu is not None and args.workers > 1:
            return "--cpu pins one capture thread; with --workers the processes would all share that CPU"
        if args.workers > 1 and _is_multicast(host):
            # __udp4_lib_mcast_deliver (and the IPv6 one) hand a copy to every
            # matching socket; SO_REUSEPORT spreads only unicast.
            return (
                "--workers cannot spread multicast: the kernel gives every socket of the "
                "group its own copy of each datagram"
            )
        if (args.interface is not None or args.source is not None) and not _is_multicast(host):
            flag = "--interface" if args.interface is not None else "--source"
            return f"{flag} applies to a multicast GROUP:PORT, and {host} is not a group"
    if args.out is not None:
        try:
            kind = format_for_path(args.out)
        except ValueError as exc:
            return str(exc)
        if args.tcp and kind != "npy":
            return "--out with --tcp records frames to .npy only: a pcap file holds UDP/IP packets"
    return None


def run(args) -> int:
    if args.frames is None and args.max_frame_age is not None:
        return fail("--max-frame-age applies to --frames only", 2)
    if args.frames is not None:
        from ._recv_frames import run_frames

        return run_frames(args)
    problem = _refusal(args)
    if problem is not None:
        return fail(problem, 2)
    if args.tcp:
        from ._recv_tcp import run_tcp

        return run_tcp(args)
    if args.workers > 1:
        from ._recv_workers import run_workers

        return run_workers(args)
    return _run_receiver(args)


def _open(args):
    rx = open_receiver(args)
    if args.out is not None:
        try:
            rx.record(args.out)
        except BaseException:
            rx.close()
            raise
    return rx


def _run_receiver(args) -> int:
    try:
        rx = _open(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        return fail(f"cannot receive on {where(args.address)}: {exc}", 2)
    notice_if_wildcard("recv", rx.address)
    rx.start()
    metrics = start_metrics(args, rx)

    def take(wait):
        try:
            return rx.get(timeout=wait).count or None
        except TimeoutError:
            return None

    banner = (
        f"receiving on {where(rx.address)} ({rx.backend} engine; ring of {rx.ring_size} x "
        f"{rx.batch_size} slots of {rx.slot_size} B, receive buffer {rx.rcvbuf / (1 << 20):.1f} MiB)"
        + (f", recording to {args.out}" if args.out else "")
    )
    extra = {"out": args.out} if args.out else {}
    interrupted, error = run_receiver(
        args,
        rx,
        take,
        banner,
        metrics,
        json_extra=dict(proto="udp", address=list(rx.address), backend=rx.backend, **extra),
        summary_extra=dict(out=args.out),
    )
    if error is not None:
        recorder = rx.recorder
        if recorder is not None and recorder.stats.error is error:
            return fail(f"recording to {args.out} failed: {error}", 1)
        return fail(f"receiving failed: {error}", 1)
    return 130 if interrupted else 0
