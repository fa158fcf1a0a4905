"""The ``--plot`` figure: rates per backend and size with the rounds' range, and loss-free rates.

Bars are medians; the error bars run from the lowest to the highest round.
With ``--find-rate`` a panel shows each receiver's loss-free rate. The
legend sits below the panels, so it never covers a bar.
"""

from __future__ import annotations

import textwrap
from typing import List, Optional

from . import BACKENDS

__all__ = ["plot_unavailable", "write_plot"]


def plot_unavailable() -> Optional[str]:
    """None if matplotlib can be imported, else the one-line message to show."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib, which is not installed; install it with: pip install 'fastnet[plot]'"
    return None


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def _bars(axis, rows, sizes, backends, key, colours) -> None:
    by_key = {(row["backend"], row["size"]): row for row in rows}
    width = 0.8 / max(1, len(backends))
    for i, backend in enumerate(backends):
        found = [by_key.get((backend, size), {}) for size in sizes]
        values = [_nan(row.get(key)) for row in found]
        low = [
            value - _nan(row.get(f"{key}_min", row.get(key)))
            for value, row in zip(values, found, strict=True)
        ]
        high = [
            _nan(row.get(f"{key}_max", row.get(key))) - value
            for value, row in zip(values, found, strict=True)
        ]
        positions = [s + (i - (len(backends) - 1) / 2) * width for s in range(len(sizes))]
        axis.bar(
            positions,
            values,
            width,
            yerr=[low, high],
            capsize=2,
            error_kw={"elinewidth": 0.8},
            color=colours[backend],
        )
    axis.set_xticks(range(len(sizes)))
    axis.set_xticklabels([f"{size} B" for size in sizes])


def write_plot(path: str, rows: List[dict], title: str, lossless: Optional[List[dict]] = None) -> None:
    """Panels of received/sent datagrams/s (and loss-free rates), one bar per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    lossless = lossless or []
    names = [row["backend"] for row in rows] + [entry["backend"] for entry in lossless]
    backends = list(dict.fromkeys(names))
    palette = plt.get_cmap("tab10")
    # One colour per backend whatever the run measured, so plots compare.
    order = list(BACKENDS) + [backend for backend in backends if backend not in BACKENDS]
    colours = {backend: palette(order.index(backend) % 10) for backend in backends}
    panels = []
    if rows:
        panels += [
            ("recv_pps", "received datagrams/s", rows, True),
            ("send_pps", "sent datagrams/s", rows, True),
        ]
    if lossless:
        senders = ", ".join(sorted({entry["sender"] for entry in lossless}))
        # Linear from 0: the loss-free rates are compared with each other, not across decades.
        panels.append(("lossless_pps", f"loss-free datagrams/s\n(paced {senders} sender)", lossless, False))
    width = max(8.0, 5.5 * len(panels))
    figure, axes = plt.subplots(1, len(panels), figsize=(width, 4.8), squeeze=False)
    for axis, (key, axis_label, source, log) in zip(axes[0], panels, strict=True):
        sizes = sorted({row["size"] for row in source})
        present = [backend for backend in backends if any(row["backend"] == backend for row in source)]
        _bars(axis, source, sizes, present, key, colours)
        axis.set_ylabel(axis_label)
        if log:
            axis.set_yscale("log")
        axis.grid(axis="y", alpha=0.3)
    measured = {row["backend"] for row in rows if row.get("status") == "ok"}
    found = {entry["backend"] for entry in lossless if entry.get("lossless_pps")}
    searched = {entry["backend"] for entry in lossless if entry.get("status") == "ok"}

    def label(backend: str) -> str:
        if backend in measured or backend in found:
            return backend
        if backend in searched:
            return f"{backend} (no loss-free rate)"
        return f"{backend} (not measured)"

    handles = [Patch(color=colours[backend], label=label(backend)) for backend in backends]
    columns = max(1, min(len(handles), int(width // 2.6)))
    figure.legend(handles=handles, loc="lower center", ncol=columns, fontsize="small", frameon=False)
    rounds = max((row.get("rounds") or 1 for row in rows), default=1)
    notes = []
    if rows:
        notes.append(f"median of {rounds} rounds, error bars: min-max" if rounds > 1 else "one round")
    if lossless:
        notes.append("loss-free: error bars span the two confirmations")
    heading = textwrap.fill(title, width=int(width * 12))
    figure.suptitle(f"{heading}\n{'; '.join(notes)}", fontsize="medium")
    # Room at the bottom for the legend's rows, below the axes, and at the top for the heading.
    legend_rows = -(-len(handles) // columns)
    top = 1 - 0.045 * heading.count("\n")
    figure.tight_layout(rect=(0, 0.06 + 0.045 * legend_rows, 1, top))
    figure.savefig(path, dpi=120)
    plt.close(figure)
