"""Why a Receiver lost or cut datagrams, and what to change: ``stats.diagnose()``.

Each counter of fastnet/receive/stats.py is a place where datagrams can be
lost; each has its usual cause and remedy:

* ``kernel_drops`` with a small receive buffer: the socket's queue overflowed
  because it holds only a fraction of a second; ask for more (``rcvbuf=``,
  ``--rcvbuf``), which the kernel caps at ``net.core.rmem_max`` without
  CAP_NET_ADMIN.
* ``kernel_drops`` with a large buffer: the capture thread was not scheduled
  for long enough to drain it: other processes competed for its CPU; pin it
  (``cpu=``, ``--cpu``) or run fewer of them.
* ``ring_overruns``: the consumer took batches more slowly than they came.
* ``truncated``: datagrams longer than ``slot_size``.
* ``capture_dropped``: the recorder could not write as fast as datagrams came.
* ``packets_late``, ``packets_rejected`` (with frames): reordering wider than
  the frames in flight; datagrams that do not match the frame spec.
* ``seq_lost`` while this host dropped nothing: lost before reaching it.

The rules work on a plain dict of the counters (``ReceiverStats.as_dict()``,
or the sums the CLI makes over worker processes), so the library and the
command line say the same thing.
"""

from __future__ import annotations

from typing import Mapping, Optional

__all__ = ["diagnose", "hints", "SMALL_RCVBUF", "RMEM_MAX_SYSCTL"]

#: A receive buffer below this (as the kernel reports it) is called small.
SMALL_RCVBUF = 8 << 20
RMEM_MAX_SYSCTL = "net.core.rmem_max"
_RMEM_MAX_PATH = "/proc/sys/net/core/rmem_max"


def _rmem_max() -> Optional[int]:
    try:
        with open(_RMEM_MAX_PATH, encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _small_buffer(rcvbuf: int) -> bool:
    """Kernel drops with this buffer (0: unknown) are blamed on its size, not on scheduling."""
    return 0 < rcvbuf < SMALL_RCVBUF


def _size(nbytes: int) -> str:
    if nbytes >= 1 << 20:
        return f"{nbytes / (1 << 20):.1f} MiB"
    return f"{nbytes / 1024:.0f} KiB"


def _count(n: int, what: str = "datagrams") -> str:
    return f"{n:,} {what[:-1] if n == 1 else what}"


def diagnose(stats: Mapping, *, cli: bool = False) -> list[str]:
    """Short sentences naming each place datagrams were lost or cut, and the likely remedy.

    ``stats``: the counters as a dict (``ReceiverStats.as_dict()``), with
    ``rcvbuf`` and ``slot_size`` where known. ``cli``: name the command-line
    options (``--rcvbuf``) rather than the keywords (``rcvbuf=``). Empty when
    nothing was lost.
    """
    option = (lambda flag, keyword: flag) if cli else (lambda flag, keyword: keyword)
    found = []
    drops = stats.get("kernel_drops") or 0
    rcvbuf = stats.get("rcvbuf") or 0
    if drops:
        if _small_buffer(rcvbuf):
            limit = _rmem_max()
            cap = f" ({RMEM_MAX_SYSCTL} is {_size(limit)})" if limit is not None else ""
            found.append(
                f"The kernel dropped {_count(drops)}: the socket's receive buffer is only "
                f"{_size(rcvbuf)}, a few milliseconds of a fast stream. Ask for more with "
                f"{option('--rcvbuf', 'rcvbuf=')} (e.g. 64M); without CAP_NET_ADMIN the kernel "
                f"caps it at {RMEM_MAX_SYSCTL}{cap}: raise it with 'sysctl -w {RMEM_MAX_SYSCTL}=67108864'."
            )
        else:
            held = f" although the receive buffer holds {_size(rcvbuf)}" if rcvbuf else ""
            found.append(
                f"The kernel dropped {_count(drops)}{held}: the capture thread was not scheduled "
                f"for long enough to drain it. Pin it to a CPU of its own ({option('--cpu', 'cpu=')}) "
                f"and run fewer competing processes."
            )
    overruns = stats.get("ring_overruns") or 0
    if overruns:
        found.append(
            f"{_count(overruns)} were discarded because the ring was full: the consumer is slower "
            f"than the stream. Do less per batch, or give the ring more room "
            f"({option('--ring-size', 'ring_size=')}); on_full='block' lets the kernel queue instead."
        )
    truncated = stats.get("truncated") or 0
    if truncated:
        slot = stats.get("slot_size")
        longer = f" longer than the {slot:,}-byte slot" if slot else " longer than a slot"
        found.append(
            f"{_count(truncated)} were{longer} and were cut: raise {option('--slot-size', 'slot_size=')}."
        )
    lost = stats.get("seq_lost") or 0
    # Only when this host dropped nothing: with GRO the kernel counts dropped
    # buffers of up to 64 datagrams, so seq_lost > kernel_drops proves nothing.
    if lost and not drops and not overruns:
        found.append(
            f"{_count(lost)} are missing by sequence number but this host dropped none: they were "
            f"lost before reaching it (the network, or the sender)."
        )
    late = stats.get("packets_late") or 0
    if late:
        found.append(
            f"{_count(late)} came after their frame had been emitted or left behind: the sender "
            f"reorders over more frames than are in flight; raise frames_in_flight."
        )
    rejected = stats.get("packets_rejected") or 0
    if rejected:
        found.append(
            f"{_count(rejected)} did not fit the frame spec (the wrong length, cut to the slot, or a "
            f"header field out of range): check the spec against what the instrument sends."
        )
    dropped_writes = stats.get("capture_dropped") or 0
    if dropped_writes:
        found.append(
            f"The recorder could not write {_count(dropped_writes)}: the disk fell behind the "
            f"stream (or a write failed). Record to a faster local disk."
        )
    return found


def hints(stats: Mapping, previous: Mapping) -> list[str]:
    """Few-word forms of the same rules, for what changed since ``previous`` (a live status line)."""

    def grew(key):
        return (stats.get(key) or 0) > (previous.get(key) or 0)

    found = []
    if grew("kernel_drops"):
        rcvbuf = stats.get("rcvbuf") or 0
        if _small_buffer(rcvbuf):
            found.append(f"kernel: buffer only {_size(rcvbuf)}, raise --rcvbuf")
        else:
            found.append("kernel: capture thread not scheduled, try --cpu")
    if grew("ring_overruns"):
        found.append("ring full: consumer too slow")
    if grew("truncated"):
        found.append("cut: raise --slot-size")
    return found
