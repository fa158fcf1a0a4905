"""Rows of results: derived columns, the terminal tables, the JSON document, the plot.

Each row is measured in rounds (``--repeat N``: every row once, then every
row again). A row's rates and ratios are medians over its rounds, with
``<key>_min``/``<key>_max`` beside them; a ratio is taken within each
round (this round's row over this round's ``python`` row) and then
summarised, and ``<ratio>_significant`` says whether its range stays clear
of 1.0x (fastnet/_bench/stats.py). The counts and raw times are those of the
row's median round (the round with the median ``recv_pps``), so they add up
as one measurement does. ``repeats`` lists every round.

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
unread             datagrams still queued when the receiver stopped (taken uncounted)
unaccounted        sent - received - kernel_drops - unread (0 when the counts add up)
reconciled         whether every round's counts add up (None: drops unreadable)
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
rounds             how many rounds were measured
repeats            one object per round: its counts, rates and ratios
=================  ==========================================================
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Sequence

from .backends import datagrams_per_drop
from .reconcile import balance
from .stats import median_index, significant, summarise

__all__ = [
    "ROW_KEYS",
    "RATE_KEYS",
    "RATIO_KEYS",
    "build_rows",
    "round_row",
    "receive_rate",
    "format_tables",
    "document",
    "write_json",
]

#: Figures summarised over the rounds as median, ``_min`` and ``_max``.
RATE_KEYS = ("send_pps", "recv_pps", "gbit_s", "send_gbit_s", "send_cpu_us", "recv_cpu_us", "loss_pct")
#: Ratios, taken within each round, then summarised with ``_min``, ``_max`` and ``_significant``.
RATIO_KEYS = ("speedup", "ref_fraction", "send_speedup", "send_ref_fraction")
#: Keys of each entry of a row's ``repeats``.
REPEAT_KEYS = (
    "status",
    "sent",
    "received",
    "kernel_drops",
    "unread",
    "unaccounted",
    "reconciled",
    "send_pps",
    "recv_pps",
    "send_cpu_us",
    "recv_cpu_us",
    "speedup",
    "ref_fraction",
    "send_speedup",
    "send_ref_fraction",
    "send_wall_s",
    "recv_window_s",
)

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
    "unread",
    "unaccounted",
    "reconciled",
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
    *(f"{key}_{end}" for key in RATE_KEYS for end in ("min", "max")),
    *(f"{key}_{end}" for key in RATIO_KEYS for end in ("min", "max", "significant")),
    "rounds",
    "repeats",
)


def ref_backend_for(backend: str) -> str:
    return "reference-gso" if backend.endswith("-gso") or backend == "reference-gro-rows" else "reference"


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


def round_row(outcome) -> dict:
    """One round of one job: its counts, rates and whether they add up."""
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
    unread = int(rx.get("unread") or 0)
    wall, window = float(tx["wall_s"]), float(rx["window_s"])
    recv_pps = receive_rate(received, int(rx["first_count"]), window, wall)
    send_pps = sent / wall if wall > 0 else None
    checked = balance(
        sent,
        received,
        outcome.kernel_drops,
        unread,
        outcome.queued_bytes,
        outcome.backlog_drops,
        datagrams_per_drop(job.sender, job.receiver, job.size),
    )
    row.update(
        sent=sent,
        received=received,
        lost=sent - received,
        kernel_drops=outcome.kernel_drops,
        unread=unread,
        unaccounted=checked.unaccounted,
        reconciled=checked.reconciled,
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
    row["note"] = "; ".join(filter(None, [row["note"], checked.note]))
    return row


def _add_ratios(rows: List[dict]) -> None:
    """Fill in one round's ratios: each row over that round's python and reference rows."""
    by_key: Dict[tuple, dict] = {(row["backend"], row["size"]): row for row in rows}
    for row in rows:
        python = by_key.get(("python", row["size"]), {})
        ref = by_key.get((row["ref_backend"], row["size"]), {})
        row["speedup"] = _ratio(row["recv_pps"], python.get("recv_pps"))
        row["ref_fraction"] = _ratio(row["recv_pps"], ref.get("recv_pps"))
        row["send_speedup"] = _ratio(row["send_pps"], python.get("send_pps"))
        row["send_ref_fraction"] = _ratio(row["send_pps"], ref.get("send_pps"))


def _is_baseline(row: dict, key: str) -> bool:
    """Whether ``key`` is this row over itself (1.0x by definition, nothing to judge)."""
    if key in ("speedup", "send_speedup"):
        return row["backend"] == "python"
    return row["backend"] == row["ref_backend"]


def _combine(rounds: List[dict]) -> dict:
    """One row from a job's rounds: medians with spreads, counts of the median round."""
    measured = [row for row in rounds if row["status"] == "ok"]
    if len(measured) < len(rounds):
        bad_index, bad = next((i, row) for i, row in enumerate(rounds) if row["status"] != "ok")
        row = dict(bad)
        if len(rounds) > 1 and bad["status"] == "failed":
            row["note"] = f"round {bad_index + 1} of {len(rounds)}: {bad['note']}"
    else:
        middle = median_index([row["recv_pps"] for row in measured])
        row = dict(measured[0 if middle is None else middle])
        for key in RATE_KEYS + RATIO_KEYS:
            low_high = summarise([each[key] for each in measured])
            if key not in ("loss_pct",):
                row[key] = low_high[0]
            row[f"{key}_min"], row[f"{key}_max"] = low_high[1], low_high[2]
            if key in RATIO_KEYS and not _is_baseline(row, key):
                row[f"{key}_significant"] = significant(low_high, len(measured))
        flags = [each["reconciled"] for each in measured]
        row["reconciled"] = False if False in flags else (None if None in flags else True)
        worst = max(measured, key=lambda each: abs(each["unaccounted"] or 0))
        row["unaccounted"] = worst["unaccounted"]
        notes: List[str] = []
        for index, each in enumerate(measured):
            for note in filter(None, (each["note"] or "").split("; ")):
                if each["reconciled"] is False and len(measured) > 1:
                    note = f"round {index + 1}: {note}"
                if note not in notes:
                    notes.append(note)
        row["note"] = "; ".join(notes)
    row["rounds"] = len(rounds)
    row["repeats"] = [{key: each[key] for key in REPEAT_KEYS} for each in rounds]
    return row


def build_rows(results: Sequence) -> List[dict]:
    """One dict per job with every column of ROW_KEYS.

    ``results[i]`` is job i's outcomes, one per round (runner.run_rounds);
    a bare Outcome counts as one round.
    """
    per_job = [list(item) if isinstance(item, (list, tuple)) else [item] for item in results]
    rounds = max((len(outcomes) for outcomes in per_job), default=0)
    by_round: List[List[Optional[dict]]] = []
    for round_index in range(rounds):
        present = [round_row(outcomes[round_index]) for outcomes in per_job if round_index < len(outcomes)]
        _add_ratios(present)
        it = iter(present)
        by_round.append([next(it) if round_index < len(outcomes) else None for outcomes in per_job])
    return [
        _combine([by_round[r][i] for r in range(rounds) if by_round[r][i] is not None])  # type: ignore[misc]
        for i in range(len(per_job))
    ]


# -- the terminal ---------------------------------------------------------------

#: Marks in the tables, explained under them.
NOT_SIGNIFICANT = "~"
UNRECONCILED = "!"


def _count(value) -> str:
    return "-" if value is None else f"{value:,}"


def _scale(value: float):
    if value >= 1e6:
        return 1e6, 2, " M"
    if value >= 1e3:
        return 1e3, 1, " k"
    return 1.0, 0, ""


def _rate(value) -> str:
    if value is None:
        return "-"
    divisor, digits, unit = _scale(value)
    return f"{value / divisor:.{digits}f}{unit}"


def _spread(row, key, digits: int, divisor: float = 1.0, mark: str = "") -> str:
    """``row[key]`` (over ``divisor``, then ``mark``) with its rounds' min-max after it; "-" for None."""
    value, low, high = row[key], row.get(f"{key}_min"), row.get(f"{key}_max")
    if value is None:
        return "-"
    text = f"{value / divisor:.{digits}f}{mark}"
    if (row.get("rounds") or 1) > 1 and low is not None and high is not None:
        text += f" ({low / divisor:.{digits}f}-{high / divisor:.{digits}f})"
    return text


def _rate_spread(row, key) -> str:
    if row[key] is None:
        return "-"
    divisor, digits, unit = _scale(row[key])
    return _spread(row, key, digits, divisor) + unit


def _fixed(digits: int):
    def show(value) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    return show


def _fixed_spread(digits: int):
    def show(row, key) -> str:
        return _spread(row, key, digits)

    return show


def _times(row, key) -> str:
    if row[key] is None:
        return "-"
    text = _spread(row, key, 2, mark="x")
    if row.get(f"{key}_significant") is False:
        text += NOT_SIGNIFICANT
    return text


def _plain(show):
    def cell(row, key) -> str:
        return show(row[key])

    return cell


_RECEIVER_COLUMNS = (
    ("size", "size", _plain(str)),
    ("receiver", "receiver", _plain(str)),
    ("sender", "sender", _plain(str)),
    ("sent", "sent", _plain(_count)),
    ("received", "received", _plain(_count)),
    ("loss %", "loss_pct", _plain(_fixed(2))),
    ("recv pps", "recv_pps", _rate_spread),
    ("Gbit/s", "gbit_s", _plain(_fixed(2))),
    ("CPU us/dgram", "recv_cpu_us", _fixed_spread(3)),
    ("vs python", "speedup", _times),
    ("vs ref", "ref_fraction", _times),
)

_SENDER_COLUMNS = (
    ("size", "size", _plain(str)),
    ("sender", "sender", _plain(str)),
    ("receiver", "receiver", _plain(str)),
    ("sent", "sent", _plain(_count)),
    ("send pps", "send_pps", _rate_spread),
    ("Gbit/s", "send_gbit_s", _plain(_fixed(2))),
    ("CPU us/dgram", "send_cpu_us", _fixed_spread(3)),
    ("vs python", "send_speedup", _times),
    ("vs ref", "send_ref_fraction", _times),
)

_LEFT = {"receiver", "sender"}


def _cell(row, key, show) -> str:
    if row["status"] != "ok" and key not in ("size", "receiver", "sender"):
        return "-"
    text = show(row, key)
    if key == "received" and row.get("reconciled") is False:
        text += UNRECONCILED
    return text


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
        elif row.get("reconciled") is False:
            cells[-1] += "  counts off"
        body.append(cells)
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = []
    for cells in [header] + body:
        parts = []
        for (_, key, _), cell, width in zip(columns, cells, widths, strict=True):
            parts.append(cell.ljust(width) if key in _LEFT else cell.rjust(width))
        lines.append("  ".join(parts).rstrip())
    return lines


def rounds_line(rows) -> str:
    """How the figures were taken, for the line above the tables."""
    rounds = max((row.get("rounds") or 1 for row in rows), default=1)
    if rounds < 2:
        return "One round per row: no spread to show (--repeat 3 or more gives one)."
    return (
        f"Each figure: the median of {rounds} interleaved rounds, (min-max) beside it; "
        "ratios are taken within each round."
    )


def format_tables(rows, *, fixed_sender=None, fixed_receiver=None, unit="datagrams") -> str:
    """The receiver-side and sender-side tables (a fixed side's table is left out).

    ``unit`` names what was counted (``"frames"`` for TCP); rows without a
    reference to compare with (``ref_backend`` None) have no "vs ref" column.
    """
    ordered = sorted(rows, key=lambda row: row["size"])  # stable: backend order kept
    out = [rounds_line(ordered), ""]
    if fixed_receiver is None:
        who = f"the {fixed_sender} sender for every row" if fixed_sender else "each row's own sender"
        out.append(f"Receiver side: how fast each receiver took {unit} in ({who})")
        out.extend(_table(ordered, _RECEIVER_COLUMNS, unit))
    if fixed_sender is None:
        out.append("")
        who = f"the {fixed_receiver} receiver for every row" if fixed_receiver else "each row's own receiver"
        out.append(f"Sender side: how fast each sender put {unit} out ({who})")
        out.extend(_table(ordered, _SENDER_COLUMNS, unit))
    marks = []
    if any(
        row.get(f"{key}_significant") is False
        for row in ordered
        for key in RATIO_KEYS
        if row["status"] == "ok"
    ):
        marks.append(
            f"  {NOT_SIGNIFICANT}  not significant: the rounds' range is as wide as the distance from 1.00x"
        )
    if any(row.get("reconciled") is False for row in ordered):
        marks.append(
            f"  {UNRECONCILED}  the counts do not add up (sent = received + kernel drops + unread): "
            "not a clean figure, see the notes"
        )
    if marks:
        out.append("")
        out.extend(marks)
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


def document(machine: dict, settings: dict, rows: List[dict], lossless: Optional[List[dict]] = None) -> dict:
    doc = {"machine": machine, "settings": settings, "results": rows}
    if lossless is not None:
        doc["lossless"] = lossless
    return doc


def write_json(path: str, doc: dict) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(doc, out, indent=2)
        out.write("\n")
