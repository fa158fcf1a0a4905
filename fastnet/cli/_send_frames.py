"""``fastnet send --frames SPEC``: synthetic frames, the spec's headers and a checkable payload.

Frames ``0, 1, 2, ...`` (``--count`` frames, default 1000, or until
``--duration``), every packet of each in order; the payload of each packet
is fastnet.frames.synthetic.pattern, so a receiver can check every row.
``--pps``/``--rate`` pace them as for numbered datagrams.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["send_frames_refusal", "send_synthetic_frames"]

#: Frames sent when neither --count nor --duration is given.
DEFAULT_FRAMES = 1000


def send_frames_refusal(args):
    """Why these arguments do not go with --frames, or None."""
    given = [
        flag
        for flag, on in (
            ("--replay", args.replay is not None),
            ("--size", args.size is not None),
            ("--tcp", args.tcp),
        )
        if on
    ]
    return f"{', '.join(given)} do not go with --frames" if given else None


def send_synthetic_frames(sender, spec, count, duration) -> None:
    """Send ``count`` frames (None: until ``duration`` ends) through ``sender``."""
    from .. import Batch
    from ..frames.synthetic import fill_batch

    per_call = max(1, 1024 // spec.packets_per_frame)  # whole frames per batch
    index = np.arange(spec.packets_per_frame, dtype=np.uint64)
    batch = Batch(
        per_call * spec.packets_per_frame, spec.packet_size or spec.min_length, family=sender.socket.family
    )
    if count is None and duration is None:
        count = DEFAULT_FRAMES
    end = None if duration is None else time.monotonic() + duration
    frame = 0
    while count is None or frame < count:
        if end is not None and time.monotonic() >= end:
            break
        n = per_call if count is None else min(per_call, count - frame)
        ids = np.arange(frame, frame + n, dtype=np.uint64)
        pairs = np.stack(np.broadcast_arrays(ids[:, None], index[None, :]), axis=-1).reshape(-1, 2)
        fill_batch(batch, spec, pairs)
        sender.send_batch(batch)
        frame += n
