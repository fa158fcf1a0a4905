"""Rows of results: derived columns, the terminal tables, the JSON document, the plot.

Columns of a row (also the keys of each JSON result):

=================  ==========================================================
proto              ``udp``, or ``tcp`` for ``--proto tcp`` (framed messages, fastnet/_bench/tcp.py)
backend            the row's name; under ``--sender``/``--receiver`` the other side is fixed
sender, receiver   what actually ran on each side
size               UDP payload bytes per datagram
status, note       ``ok``, ``skipped`` or ``failed``, and why / what to know
sent, received     datagrams counted by the sender and by the receiver
lost               sent - received
kernel_drops       the receiver socket's drop counter (/proc/net/udp), when readable
loss_pct           100 * lost / sent
send_pps           sent / the sender's wall time
recv_pps           datagrams per second over the receiver's window (first to last
                   arrival, drain included); the first batch opens the window
gbit_s             recv_pps * size * 8 / 1e9: received payload, Gbit/s
send_gbit_s        send_pps * size * 8 / 1e9: sent payload, Gbit/s
send_cpu_us        sender CPU time (user + system) per datagram sent, µs
recv_cpu_us        receiver CPU time per datagram received, µs
speedup            recv_pps / recv_pps of the ``python`` row at the same size
ref_fraction       recv_pps / recv_pps of the ``ref_backend`` row at the same size
ref_backend        ``reference-gso`` for the ``*-gso`` rows, else ``reference``
send_speedup       send_pps / send_pps of the ``python`` row at the same size
send_ref_fraction  send_pps / send_pps of the ``ref_backend`` row at the same size
send_wall_s        the sender's sending time, s
recv_window_s      the receiver's window (first to last batch), s
send_cpu_s         sender CPU time over its loop, s
recv_cpu_s         receiver CPU time over its loop, s
rcvbuf             the receiver's SO_RCVBUF as the kernel reports it (twice the usable size)
=================  ==========================================================
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional

__all__ = [
    "ROW_KEYS",
    "build_rows",
    "receive_rate",
    "format_tables",
    "document",
    "write_json",
    "plot_unavailable",
    "write_plot",
]

ROW_KEYS = (
    "proto",
    "backend",
    "sender",
    "receiver",
    "size",
    "status",
    "note",
    "sent",
    "received",
    "lost",
    "kernel_drops",
    "loss_pct",
    "send_pps",
    "recv_pps",
    "gbit_s",
    "send_gbit_s",
    "send_cpu_us",
    "recv_cpu_us",
    "speedup",
    "ref_fraction",
    "ref_backend",
    "send_speedup",
    "send_ref_fraction",
    "send_wall_s",
    "recv_window_s",
    "send_cpu_s",
    "recv_cpu_s",
    "rcvbuf",
)


def ref_backend_for(backend: str) -> str:
    return "reference-gso" if backend.endswith("-gso") else "reference"


def receive_rate(received: int, first_count: int, window_s: float, fallback_s: float) -> Optional[float]:
    """Datagrams per second the receiver took in.

    The window runs from the first batch's arrival to the last one's, so the
    first batch arrived before it opened and is left out of the count. When
    everything came in one batch the window is empty; the sender's time is
    used instead.
    """
    if received > first_count and window_s > 0:
        return (received - first_count) / window_s
    if fallback_s > 0:
        return received / fallback_s
    return None


def _ratio(value, base) -> Optional[float]:
    if value is None or not base:
        return None
    return value / base


def _row(outcome) -> dict:
    job = outcome.job
    row = dict.fromkeys(ROW_KEYS)
    row.update(
        proto="udp",
        backend=job.backend,
        sender=job.sender,
        receiver=job.receiver,
        size=job.size,
        status=outcome.status,
        note=outcome.note,
        ref_backend=ref_backend_for(job.backend),
    )
    if outcome.status != "ok":
        return row
    tx, rx = outcome.sender, outcome.receiver
    sent, received = int(tx["sent"]), int(rx["received"])
    wall, window = float(tx["wall_s"]), float(rx["window_s"])
    recv_pps = receive_rate(received, int(rx["first_count"]), window, wall)
    send_pps = sent / wall if wall > 0 else None
    row.update(
        sent=sent,
        received=received,
        lost=sent - received,
        kernel_drops=outcome.kernel_drops,
        loss_pct=100.0 * (sent - received) / sent if sent else 0.0,
        send_pps=send_pps,
        recv_pps=recv_pps,
        gbit_s=recv_pps * job.size * 8 / 1e9 if recv_pps is not None else None,
        send_gbit_s=send_pps * job.size * 8 / 1e9 if send_pps is not None else None,
        send_cpu_us=float(tx["cpu_s"]) * 1e6 / sent if sent else None,
        recv_cpu_us=float(rx["cpu_s"]) * 1e6 / received if received else None,
        send_wall_s=wall,
        recv_window_s=window,
        send_cpu_s=float(tx["cpu_s"]),
        recv_cpu_s=float(rx["cpu_s"]),
        rcvbuf=rx.get("rcvbuf"),
    )
    if received > sent:
        # Cannot happen with these peers; if it does, say so rather than hide it.
        row["note"] = "; ".join(filter(None, [row["note"], "received more than sent"]))
    return row


def build_rows(outcomes) -> List[dict]:
    """One dict per outcome with every column of ROW_KEYS, ratios filled in."""
    rows = [_row(outcome) for outcome in outcomes]
    by_key: Dict[tuple, dict] = {(row["backend"], row["size"]): row for row in rows}
    for row in rows:
        python = by_key.get(("python", row["size"]), {})
        ref = by_key.get((row["ref_backend"], row["size"]), {})
        row["speedup"] = _ratio(row["recv_pps"], python.get("recv_pps"))
        row["ref_fraction"] = _ratio(row["recv_pps"], ref.get("recv_pps"))
        row["send_speedup"] = _ratio(row["send_pps"], python.get("send_pps"))
        row["send_ref_fraction"] = _ratio(row["send_pps"], ref.get("send_pps"))
    return rows


# -- the terminal ---------------------------------------------------------------


def _count(value) -> str:
    return "-" if value is None else f"{value:,}"


def _rate(value) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def _fixed(digits: int):
    def show(value) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    return show


def _times(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


_RECEIVER_COLUMNS = (
    ("size", "size", str),
    ("receiver", "receiver", str),
    ("sender", "sender", str),
    ("sent", "sent", _count),
    ("received", "received", _count),
    ("loss %", "loss_pct", _fixed(2)),
    ("recv pps", "recv_pps", _rate),
    ("Gbit/s", "gbit_s", _fixed(2)),
    ("CPU us/dgram", "recv_cpu_us", _fixed(3)),
    ("vs python", "speedup", _times),
    ("vs ref", "ref_fraction", _times),
)

_SENDER_COLUMNS = (
    ("size", "size", str),
    ("sender", "sender", str),
    ("receiver", "receiver", str),
    ("sent", "sent", _count),
    ("send pps", "send_pps", _rate),
    ("Gbit/s", "send_gbit_s", _fixed(2)),
    ("CPU us/dgram", "send_cpu_us", _fixed(3)),
    ("vs python", "send_speedup", _times),
    ("vs ref", "send_ref_fraction", _times),
)

_LEFT = {"receiver", "sender"}


def _cell(row, key, show) -> str:
    if row["status"] != "ok" and key not in ("size", "receiver", "sender"):
        return "-"
    return show(row[key])


def _table(rows, columns, unit) -> List[str]:
    if all(row["ref_backend"] is None for row in rows):  # nothing to compare with
        columns = [column for column in columns if column[0] != "vs ref"]
    per = "dgram" if unit == "datagrams" else unit.rstrip("s")
    header = [title.replace("/dgram", f"/{per}") for title, _, _ in columns]
    body = []
    for row in rows:
        cells = [_cell(row, key, show) for _, key, show in columns]
        if row["status"] != "ok":
            cells[-1] += f"  {row['status']}"
        body.append(cells)
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = []
    for cells in [header] + body:
        parts = []
        for (_, key, _), cell, width in zip(columns, cells, widths, strict=True):
            parts.append(cell.ljust(width) if key in _LEFT else cell.rjust(width))
        lines.append("  ".join(parts).rstrip())
    return lines


def format_tables(rows, *, fixed_sender=None, fixed_receiver=None, unit="datagrams") -> str:
    """The receiver-side and sender-side tables (a fixed side's table is left out).

    ``unit`` names what was counted (``"frames"`` for TCP); rows without a
    reference to compare with (``ref_backend`` None) have no "vs ref" column.
    """
    ordered = sorted(rows, key=lambda row: row["size"])  # stable: backend order kept
    out = []
    if fixed_receiver is None:
        who = f"the {fixed_sender} sender for every row" if fixed_sender else "each row's own sender"
        out.append(f"Receiver side: how fast each receiver took {unit} in ({who})")
        out.extend(_table(ordered, _RECEIVER_COLUMNS, unit))
    if fixed_sender is None:
        if out:
            out.append("")
        who = f"the {fixed_receiver} receiver for every row" if fixed_receiver else "each row's own receiver"
        out.append(f"Sender side: how fast each sender put {unit} out ({who})")
        out.extend(_table(ordered, _SENDER_COLUMNS, unit))
    sizes_by_note: Dict[tuple, List[int]] = {}
    for row in ordered:
        if row["note"]:
            sizes_by_note.setdefault((row["backend"], row["note"]), []).append(row["size"])
    notes = [
        f"  {backend} ({', '.join(map(str, sizes))} B): {note}"
        for (backend, note), sizes in sizes_by_note.items()
    ]
    if notes:
        out.append("")
        out.append("Notes:")
        out.extend(notes)
    return "\n".join(out)


# -- files -----------------------------------------------------------------------


def document(machine: dict, settings: dict, rows: List[dict]) -> dict:
    return {"machine": machine, "settings": settings, "results": rows}


def write_json(path: str, doc: dict) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(doc, out, indent=2)
        out.write("\n")


def plot_unavailable() -> Optional[str]:
    """None if matplotlib can be imported, else the one-line message to show."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib, which is not installed; install it with: pip install 'fastnet[plot]'"
    return None


def write_plot(path: str, rows: List[dict], title: str) -> None:
    """Grouped bars per size: receive rate, send rate and Gbit/s, one bar per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({row["size"] for row in rows})
    backends = list(dict.fromkeys(row["backend"] for row in rows))
    by_key = {(row["backend"], row["size"]): row for row in rows}
    panels = (
        ("recv_pps", "received datagrams/s", True),
        ("send_pps", "sent datagrams/s", True),
        ("gbit_s", "received Gbit/s", False),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5))
    width = 0.8 / max(1, len(backends))
    for axis, (key, label, log) in zip(axes, panels, strict=True):
        for i, backend in enumerate(backends):
            values = [by_key.get((backend, size), {}).get(key) for size in sizes]
            values = [float("nan") if value is None else value for value in values]
            positions = [s + (i - (len(backends) - 1) / 2) * width for s in range(len(sizes))]
            measured = any(by_key.get((backend, size), {}).get("status") == "ok" for size in sizes)
            axis.bar(positions, values, width, label=backend if measured else f"{backend} (not measured)")
        axis.set_xticks(range(len(sizes)))
        axis.set_xticklabels([f"{size} B" for size in sizes])
        axis.set_ylabel(label)
        if log:
            axis.set_yscale("log")
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
