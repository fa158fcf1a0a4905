"""``fastnet bench --proto tcp``: framed messages over loopback TCP, as rows of the UDP report.

The measuring is ``fastnet._bench.tcp_run.measure``'s (a receiver and a
sender process per row, ``recv_frames``/``send_frames`` on the backend
measured, run by the UDP bench's runner). This module runs the rows in
rounds, as for UDP, so that a row that cannot run or fails is reported as
such (``status``/``note``) instead of ending the run, and gives them the
rows of fastnet/_bench/report.py: the same keys and ratios over the
``python`` row, with ``proto="tcp"``. TCP drops nothing and has no
reference peer here: ``kernel_drops``, ``rcvbuf``, ``ref_backend`` and the
reference ratios are None; the counts reconcile when every frame sent was
received.
"""

from __future__ import annotations

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

    from .tcp_run import measure

    try:
        _backend.load(job.backend)
    except ImportError as exc:
        return Outcome(job, status="skipped", note=str(exc))
    return measure(job, duration)


def run_rows(
    backends: Iterable[str],
    sizes: Iterable[int],
    duration: float,
    progress: Optional[Callable[[int, Job], None]] = None,
    repeats: int = 1,
) -> List[dict]:
    """One report row per (size, backend), in the UDP bench's order, over ``repeats`` rounds.

    ``progress(index, job)`` is called before each measurement, as for UDP.
    Bad arguments raise ValueError before anything is started.
    """
    backends, sizes = list(backends), [int(size) for size in sizes]
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown TCP backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    if any(not 0 <= size <= MAX_SIZE for size in sizes):
        raise ValueError(f"sizes must be 0 to {MAX_SIZE} bytes, got {sizes}")
    if not duration > 0 or duration == float("inf"):
        raise ValueError(f"duration must be a finite number greater than 0, got {duration}")
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
