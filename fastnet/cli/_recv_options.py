"""The Receiver's keywords from ``fastnet recv``'s arguments, for every receive path."""

from __future__ import annotations

__all__ = ["DEFAULT_ON_FULL", "interface_arg", "receiver_options"]

DEFAULT_ON_FULL = "block"


def interface_arg(text):
    """--interface: a name or an address, or a number for an interface index."""
    return int(text) if text is not None and text.isdigit() else text


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
    )
