"""The Receiver's keywords from ``fastnet recv``'s arguments, for every receive path."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

__all__ = ["DEFAULT_ON_FULL", "cpu_arg", "interface_arg", "receiver_options", "open_receiver"]

DEFAULT_ON_FULL = "block"


def interface_arg(text):
    """--interface: a name or an address, or a number for an interface index."""
    return int(text) if text is not None and text.isdigit() else text


def cpu_arg(text):
    """--cpu: a CPU this process may run on."""
    try:
        cpu = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CPU number") from None
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise argparse.ArgumentTypeError(
            f"CPU {cpu} is not one this process may run on ({', '.join(map(str, sorted(allowed)))})"
        )
    return cpu


def receiver_options(args) -> dict:
    """The Receiver's keywords from the arguments (but address and backend)."""
    import fastnet

    return dict(
        slot_size=args.slot_size,
        batch_size=args.batch_size,
        ring_size=args.ring_size,  # None: the Receiver's default (fastnet/receive/sizing.py)
        rcvbuf=args.rcvbuf,
        on_full=args.on_full or DEFAULT_ON_FULL,
        seq=fastnet.SeqField() if args.seq else None,
        interface=interface_arg(args.interface),
        source=args.source,
        gro=args.gro,
        cpu=getattr(args, "cpu", None),
    )


def open_receiver(args, **extra):
    """The Receiver of ``fastnet recv`` for these arguments and ``extra`` keywords; warnings printed."""
    import fastnet

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", fastnet.BufferSizeWarning)
        rx = fastnet.Receiver(args.address, backend=args.backend, **receiver_options(args), **extra)
    for warning in caught:
        print(f"fastnet recv: warning: {warning.message}", file=sys.stderr)
    return rx
