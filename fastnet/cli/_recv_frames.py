"""``fastnet recv --frames SPEC``: a Receiver's batches through a FrameAssembler, to a frame file.

The Receiver is made as for plain ``fastnet recv``; each batch it delivers
goes through a FrameAssembler made from the TOML (or JSON) spec, and with
``--out FILE.h5`` (or ``.zarr``) the frames go to a FrameWriter writing in
a thread of its own. The status line adds frames complete, incomplete and
missing per second; the summary and ``--json`` add the frame counters.
``--metrics HOST:PORT`` serves all of them to Prometheus.
"""

from __future__ import annotations

import sys

from ._bind import notice_if_wildcard
from ._recv_loop import Run
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


def _stats(rx, asm, writer) -> dict:
    stats = dict(rx.stats.as_dict(), accounted=rx.stats.accounted)
    stats.update(asm.stats.as_dict())
    if writer is not None:
        written = writer.stats
        stats.update(frames_written=written.frames_written, frames_dropped=written.frames_dropped)
    return stats


def run_frames(args) -> int:
    import fastnet

    problem = frames_refusal(args)
    if problem is not None:
        return fail(problem, 2)
    out = args.out  # the Receiver does not record: the writer does
    rx = asm = writer = metrics = None
    try:
        spec = fastnet.load_frame_spec(args.frames)
        asm = fastnet.FrameAssembler(spec, args.frames_in_flight, backend=args.backend)
        rx = open_receiver(args)
        if out is not None:
            writer = fastnet.FrameWriter(out, spec, background=True, stats_of=asm)
        metrics = start_metrics(args, rx, asm)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        for thing in (writer, rx):
            if thing is not None:
                thing.close()
        return fail(f"cannot receive frames on {where(args.address)}: {exc}", 2)
    notice_if_wildcard("recv", rx.address)
    interrupted = False
    error = None
    rx.start()
    run = Run(args, _stats(rx, asm, writer))

    def deliver(frames):
        if writer is not None:
            writer.write(frames)
        return len(frames)

    def take(wait):
        try:
            batch = rx.get(timeout=wait)
        except TimeoutError:
            return None
        deliver(asm.add(batch))
        return batch.count or None

    try:
        print(
            f"receiving on {where(rx.address)} ({rx.backend} engine), frames of {args.frames}"
            + (f", recording to {out}" if out else ""),
            file=sys.stderr,
            flush=True,
        )
        run.loop(take, lambda: _stats(rx, asm, writer))
        rx.stop()
        for batch in rx:  # what was captured before the stop is placed too
            deliver(asm.add(batch))
            run.meter.saw_batch()
    except KeyboardInterrupt:
        interrupted = True
    except fastnet.ReceiverStopped:
        pass
    except Exception as exc:  # noqa: BLE001 - reported in one line below
        error = exc
    finally:
        try:
            deliver(asm.flush())
            rx.close()
            if writer is not None:
                writer.close()  # the rest of the queue, and the final stats
        except Exception as exc:  # noqa: BLE001 - a writing error: reported below
            error = error or exc
        if metrics is not None:
            metrics.close()
    extra = {"out": out} if out else {}
    run.report(
        _stats(rx, asm, writer),
        interrupted,
        json_extra=dict(
            proto="udp", address=list(rx.address), backend=rx.backend, frames=args.frames, **extra
        ),
        summary_extra=dict(out=None),
    )
    if error is not None:
        return fail(f"receiving frames failed: {error}", 1)
    return 130 if interrupted else 0
