"""``fastnet bench --find-rate``: the highest rate each receiver takes with nothing lost.

A flood says how a sender and a receiver happen to share the CPUs; an
acquisition script needs the rate it can take without losing a datagram.
For each receiver and size, the paced sender (the C GSO sender where it can
run: the fastest there is) sends at a set rate for a window (default 1 s);
the rate is searched between what the sender reaches unpaced and a floor:

1. one unpaced probe: its send rate is the ceiling (if the receiver loses
   nothing even then, the rate found is the sender's, and the entry says so);
2. a first guess at what the receiver took in while flooded, then halving
   until a probe is clean, then bisection in ratio (the geometric mean of the
   lowest losing rate and the highest clean one) until the two are within
   ``resolution`` of each other, at most ``max_steps`` probes;
3. the rate found is confirmed by two more probes; if either loses, that
   rate counts as losing and the search goes on below it, at most
   ``max_retries`` more times.

A probe is clean when every datagram sent was received (the kernel dropped
none, the counts reconcile) and the receiver kept up: its last datagram
arrived within ``max_lag_s`` of the sender's last send (both stamp
CLOCK_MONOTONIC). Without that second condition a large receive buffer would
hide a receiver that falls behind for a whole window.

Every search is bounded: at most ``1 + (1 + max_retries) * (max_steps + 2)``
probes, each ``window`` seconds plus start-up (under a second per probe on
two cores); with the defaults, at most 25 probes per receiver and size
(about 45 s), with --quick's at most 13 (about 10 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from .backends import PACEABLE
from .report import round_row
from .runner import Job, Outcome, run_job

__all__ = ["Search", "DEFAULT", "QUICK", "pick_sender", "find_rate", "probe_limit"]


@dataclass(frozen=True)
class Search:
    """How a search is run: the probe window, when to stop, how often to retry."""

    window_s: float = 1.0
    #: Stop when the lowest losing rate is within this factor of the highest clean one.
    resolution: float = 1.05
    max_steps: int = 6
    max_retries: int = 2
    #: Slowest rate tried; a receiver that loses even here has no loss-free rate.
    floor_pps: float = 1000.0
    #: Longest the receiver may still be taking datagrams after the sender stopped.
    max_lag_s: float = 0.05


#: The default search, and a --quick-sized one (what the tests run).
DEFAULT = Search()
QUICK = Search(window_s=0.25, resolution=1.25, max_steps=4, max_retries=1)


def probe_limit(search: Search) -> int:
    """Most probes one search makes."""
    return 1 + (1 + search.max_retries) * (search.max_steps + 2)


def pick_sender(catalog) -> Tuple[Optional[str], str]:
    """The fastest paced sender that can run here, and why the faster ones cannot."""
    passed: List[str] = []
    for name in PACEABLE:
        reason = catalog.unavailable(name)
        if reason is None:
            return name, "; ".join(passed)
        passed.append(f"{name}: {reason}")
    return None, "; ".join(passed)


def _probe(catalog, job: Job, window_s: float, cpus, search: Search) -> dict:
    """One paced (or, at rate 0, unpaced) run: its counts and whether it was clean."""
    outcome: Outcome = run_job(job, catalog, window_s, cpus)
    step = {"rate_pps": job.rate or None, "status": outcome.status}
    if outcome.status != "ok":
        step.update(clean=False, note=outcome.note)
        return step
    row = round_row(outcome)
    t_end, t_last = outcome.sender.get("t_end"), outcome.receiver.get("t_last")
    window = float(outcome.sender.get("wall_s") or 0.0)
    lag = max(0.0, float(t_last) - float(t_end)) if t_end is not None and t_last is not None else None
    lost = row["sent"] - row["received"]
    step.update(
        sent=row["sent"],
        received=row["received"],
        kernel_drops=row["kernel_drops"],
        unread=row["unread"],
        reconciled=row["reconciled"],
        sent_pps=row["send_pps"],
        lag_s=lag,
        # A receiver that lost datagrams with well under one CPU's worth of
        # time over the window was waiting or starved, not slow: on a shared
        # machine, the sign of another process's load.
        recv_cpu_share=row["recv_cpu_s"] / window if window > 0 else None,
        clean=bool(
            row["sent"] > 0
            and lost == 0
            and row["reconciled"]
            and lag is not None
            and lag <= search.max_lag_s
        ),
    )
    if row["note"]:
        step["note"] = row["note"]
    return step


def find_rate(
    catalog,
    receiver: str,
    size: int,
    sender: str,
    cpus,
    search: Search = DEFAULT,
    progress: Optional[Callable[[str], None]] = None,
    connect: bool = False,
) -> dict:
    """The ``lossless`` entry of one receiver at one size (see the module's docstring).

    ``connect``: the paced sender connects its socket (``--connect``).
    """
    entry: dict = {
        "backend": receiver,
        "size": size,
        "lossless_pps": None,
        "lossless_pps_min": None,
        "lossless_pps_max": None,
        "target_pps": None,
        "gbit_s": None,
        "sender": sender,
        "window_s": search.window_s,
        "status": "ok",
        "note": "",
        "confirmations": [],
        "steps": [],
    }
    reason = catalog.unavailable(receiver)
    if reason is not None:
        entry.update(status="skipped", note=reason)
        return entry

    def probe(rate: float, what: str) -> dict:
        if progress is not None:
            shown = f"{rate:,.0f}/s" if rate else "unpaced"
            progress(f"{size} B  {receiver}: {what} at {shown}")
        job = Job(receiver, sender, receiver, size, rate, connect)
        step = _probe(catalog, job, search.window_s, cpus, search)
        step["phase"] = what
        entry["steps"].append(step)
        return step

    flood = probe(0.0, "ceiling")
    if flood["status"] != "ok":
        entry.update(status=flood["status"], note=flood.get("note", ""))
        return entry
    ceiling = float(flood["sent_pps"] or 0.0)
    # Rate 0.0 stands for "unpaced": the ceiling, when the receiver kept up with it.
    clean: List[float] = [0.0] if flood["clean"] else []
    bad: Optional[float] = None if flood["clean"] else ceiling
    # First guess below a lossy ceiling: what the receiver took in while flooded.
    guess = min(ceiling / search.resolution, flood["received"] / search.window_s) if bad else 0.0
    for _ in range(1 + search.max_retries):
        for _ in range(search.max_steps):
            good = max(clean, default=None)
            if bad is None:
                break  # clean at the ceiling: nothing above it to try
            if good is not None and (good == 0.0 or bad / good <= search.resolution):
                break
            if guess and (good or 0.0) < guess < bad:
                rate, guess = guess, 0.0
            elif good is None:
                rate = bad / 2  # halve until clean, then bisect
            else:
                rate = math.sqrt(good * bad)
            if rate < search.floor_pps:
                break
            step = probe(rate, "search")
            if step["status"] != "ok":
                entry.update(status=step["status"], note=step.get("note", ""))
                return entry
            if step["clean"]:
                clean.append(rate)
            else:
                bad = rate
        good = max(clean, default=None)
        if good is None:
            entry["note"] = (
                f"loses datagrams at every rate tried, down to {entry['steps'][-1]['rate_pps'] or 0:,.0f}/s"
            )
            return entry
        checks = [probe(good, "confirm") for _ in range(2)]
        if all(check["clean"] for check in checks):
            achieved = min(float(check["sent_pps"]) for check in checks)
            entry.update(
                lossless_pps=achieved,
                # The plot's error bar: the two confirmations' achieved rates.
                lossless_pps_min=achieved,
                lossless_pps_max=max(float(check["sent_pps"]) for check in checks),
                target_pps=good or None,
                gbit_s=achieved * size * 8 / 1e9,
                confirmations=[
                    {key: check[key] for key in ("sent", "received", "kernel_drops", "lag_s")}
                    for check in checks
                ],
            )
            if good == 0.0:
                entry["note"] = (
                    f"kept up with the unpaced {sender} sender: the rate is the sender's, not a limit"
                )
            return entry
        # Not confirmed: the rate is a losing one after all; search below it.
        clean = [rate for rate in clean if rate != good]
        bad = good or ceiling
    entry["note"] = f"no rate was confirmed loss-free twice in a row ({1 + search.max_retries} tries)"
    return entry


def run_search(
    catalog,
    receivers: List[str],
    sizes: List[int],
    sender: str,
    cpus,
    search: Search = DEFAULT,
    progress: Optional[Callable[[str], None]] = None,
    connect: bool = False,
) -> List[dict]:
    """One entry per (size, receiver), in the tables' order."""
    return [
        find_rate(catalog, receiver, size, sender, cpus, search, progress, connect)
        for size in sizes
        for receiver in receivers
    ]


def format_lossless(entries: List[dict], search: Search, passed_over: str = "") -> str:
    """The terminal table of loss-free rates; ``passed_over``: why faster senders were not used."""
    senders = sorted({entry["sender"] for entry in entries})
    lines = [
        f"Loss-free rates: the highest paced rate each receiver took with nothing lost "
        f"(sender {', '.join(senders)}, {search.window_s:g} s windows, confirmed twice, "
        f"at most {probe_limit(search)} probes each)"
    ]
    header = ["size", "receiver", "loss-free pps", "Gbit/s", "confirmations sent/received/dropped", "probes"]
    body = []
    for entry in entries:
        confirmations = ", ".join(
            f"{check['sent']:,}/{check['received']:,}/{check['kernel_drops']}"
            for check in entry["confirmations"]
        )
        if entry["lossless_pps"] is not None:
            rate = f"{entry['lossless_pps']:,.0f}"
            gbit = f"{entry['gbit_s']:.2f}"
        else:
            rate, gbit = "-", "-"
        status = "" if entry["status"] == "ok" else f"  {entry['status']}"
        body.append(
            [
                str(entry["size"]),
                entry["backend"],
                rate,
                gbit,
                confirmations or "-",
                f"{len(entry['steps'])}{status}",
            ]
        )
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    for cells in [header] + body:
        parts = [
            cell.ljust(width) if i == 1 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    notes = [
        f"  {entry['backend']} ({entry['size']} B): {entry['note']}" for entry in entries if entry["note"]
    ]
    if notes:
        lines += ["", "Notes:"] + notes
    return "\n".join(lines)
