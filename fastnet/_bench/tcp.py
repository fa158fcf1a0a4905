"""``fastnet bench --proto tcp``: framed messages over loopback TCP, as rows of the UDP report.

The measuring is ``fastnet._bench.tcp_run.run_tcp_bench``'s (a receiver and a
sender process per row, ``recv_frames``/``send_frames`` on the backend
measured). This module runs it one row at a time, so that a row that cannot
run or fails is reported as such (``status``/``note``) instead of ending the
run, and turns its figures into the rows of fastnet/_bench/report.py: the
same keys and ratios over the ``python`` row, with ``proto="tcp"``. TCP
drops nothing and has no reference peer here: ``kernel_drops``, ``rcvbuf``,
``ref_backend`` and the reference ratios are None.
"""

from __future__ import annotations

import subprocess
from typing import Callable, Iterable, List, Optional

from .report import build_rows
from .runner import Job, Outcome, run_rounds

__all__ = ["BACKENDS", "DEFAULT_SIZES", "MAX_SIZE", "run_rows"]

#: The engines measured over TCP, in the order rows are shown.
BACKENDS = ("cython", "python")
#: Frame payload sizes measured when ``--sizes`` is not given.
DEFAULT_SIZES = (64, 1024, 65536)
#: Largest frame payload: the default ``max_frame`` (16 MiB).
MAX_SIZE = 16 * 2**20


def _outcome(job: Job, duration: float) -> Outcome:
    from fastnet import engines as _backend
    from fastnet._bench.tcp_run import run_tcp_bench

    try:
        _backend.load(job.backend)
    except ImportError as exc:
        return Outcome(job, status="skipped", note=str(exc))
    try:
        [row] = run_tcp_bench([job.backend], [job.size], duration)
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return Outcome(job, status="failed", note=str(exc))
    sent, received = row["sent"], row["received"]
    # The report derives rates from counts and times: give it the times
    # these rates came from (the receiver's window opens at its first frame).
    sender = {
        "sent": sent,
        "wall_s": sent / row["send_pps"] if row["send_pps"] else duration,
        "cpu_s": row["send_cpu_us"] * sent / 1e6,
    }
    receiver = {
        "received": received,
        "first_count": 0,
        "window_s": received / row["recv_pps"] if row["recv_pps"] else 0.0,
        "cpu_s": row["recv_cpu_us"] * received / 1e6,
        "rcvbuf": None,
    }
    note = "" if sent == received else "the receiver gave up before the sender finished"
    # TCP drops nothing: every frame sent must have been received.
    return Outcome(job, note=note, sender=sender, receiver=receiver, kernel_drops=0, queued_bytes=0)


def run_rows(
    backends: Iterable[str],
    sizes: Iterable[int],
    duration: float,
    progress: Optional[Callable[[int, Job], None]] = None,
    repeats: int = 1,
) -> List[dict]:
    """One report row per (size, backend), in the UDP bench's order, over ``repeats`` rounds.

    ``progress(index, job)`` is called before each measurement, as for UDP.
    """
    jobs = [Job(backend, backend, backend, size) for size in sizes for backend in backends]
    results = run_rounds(
        jobs, None, duration, None, repeats, progress, measure=lambda job: _outcome(job, duration)
    )
    rows = build_rows(results)
    for row in rows:
        row.update(proto="tcp", ref_backend=None, kernel_drops=None)
        for key in ("ref_fraction", "send_ref_fraction"):
            row.update({key: None, f"{key}_min": None, f"{key}_max": None, f"{key}_significant": None})
        for each in row["repeats"]:
            each.update(kernel_drops=None, ref_fraction=None, send_ref_fraction=None)
    return rows
