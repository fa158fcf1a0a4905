"""``fastnet recv --frames SPEC``: a Receiver assembling frames, recording them to a frame file.

The Receiver is made as for plain ``fastnet recv``, with ``frames=`` the
TOML (or JSON) spec, so it hands over frames; with ``--out FILE.h5`` (or
``.zarr``) it records them (``Receiver.record``: a FrameWriter in a thread
of its own, complete once the Receiver has stopped). The status line adds
frames complete, incomplete and missing per second; the summary and
``--json`` add the frame counters. ``--metrics HOST:PORT`` serves all of
them to Prometheus.
"""

from __future__ import annotations

import sys

from ._bind import notice_if_wildcard
from ._recv_loop import run_receiver
from ._recv_options import open_receiver
from ._recv_report import fail, where

__all__ = ["run_frames", "frames_refusal", "start_metrics"]


def frames_refusal(args):
    """Why these arguments do not go with --frames, or None."""
    given = [
        flag for flag, on in (("--tcp", args.tcp), ("--workers", args.workers > 1), ("--seq", args.seq)) if on
    ]
    if given:
        return f"{', '.join(given)} do not go with --frames"
    if args.out is not None and not args.out.rstrip("/").endswith((".h5", ".hdf5", ".zarr")):
        return f"--out with --frames writes HDF5 (.h5, .hdf5) or zarr (.zarr), not {args.out}"
    return None


def start_metrics(args, *sources):
    """The metrics server of --metrics, or None without it."""
    if getattr(args, "metrics", None) is None:
        return None
    import fastnet

    server = fastnet.serve_metrics(list(sources), args.metrics)
    print(f"metrics on http://{where(server.address)}/metrics", file=sys.stderr, flush=True)
    return server


def run_frames(args) -> int:
    import fastnet

    problem = frames_refusal(args)
    if problem is not None:
        return fail(problem, 2)
    out = args.out
    rx = metrics = None
    try:
        spec = fastnet.load_frame_spec(args.frames)
        rx = open_receiver(
            args, frames=spec, frames_in_flight=args.frames_in_flight, max_frame_age=args.max_frame_age
        )
        if out is not None:
            rx.record(out)
        metrics = start_metrics(args, rx)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        if rx is not None:
            rx.close()
        return fail(f"cannot receive frames on {where(args.address)}: {exc}", 2)
    notice_if_wildcard("recv", rx.address)
    rx.start()
    delivered = 0  # datagrams the frames taken so far came from: --count counts datagrams

    def take(wait):
        nonlocal delivered
        try:
            rx.get(timeout=wait)
        except TimeoutError:
            return None
        now = rx.stats.delivered
        n, delivered = now - delivered, now
        return n or None

    banner = f"receiving on {where(rx.address)} ({rx.backend} engine), frames of {args.frames}" + (
        f", recording to {out}" if out else ""
    )
    extra = {"out": out} if out else {}
    interrupted, error = run_receiver(
        args,
        rx,
        take,
        banner,
        metrics,
        json_extra=dict(
            proto="udp", address=list(rx.address), backend=rx.backend, frames=args.frames, **extra
        ),
        summary_extra=dict(out=None),
    )
    if error is not None:
        return fail(f"receiving frames failed: {error}", 1)
    return 130 if interrupted else 0
