"""Whether a measurement's counts add up: sent = received + kernel drops + unread.

Every datagram the sender counted must be in one of three places at the end:
taken by the receiver (``received``), dropped by the kernel at the
receiver's socket (its drop counter in /proc/net/udp, mostly a full receive
buffer), or still queued when the receiver stopped (``unread``: taken
uncounted after a drain that ran out of time). A row whose counts do not
add up is flagged with the difference and never shown as a clean figure.

A receiver with UDP_GRO on gets the sender's GSO buffers whole, and when its
queue is full the kernel drops a whole buffer and adds one to the socket's
drop counter, not one per datagram in it (measured on Linux 6.18: exactly 62
datagrams missing per drop beyond the counted one, for 63-segment buffers of
1024 B). For those rows each drop stands for 1 to ``datagrams_per_drop``
datagrams, and the counts add up when the difference lies in that range.

On loopback one more place exists that no per-socket counter sees: the
per-CPU backlog of packets waiting for the receive softirq
(net.core.netdev_max_backlog). Its drops are counted machine-wide in
/proc/net/softnet_stat; the runner notes that counter's rise next to a
difference, since other traffic on the machine moves it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Balance", "balance", "softnet_drops"]


@dataclass(frozen=True)
class Balance:
    """``reconciled`` is None when the kernel's drop counter could not be read."""

    reconciled: Optional[bool]
    unaccounted: Optional[int]
    note: str


def balance(
    sent: int,
    received: int,
    kernel_drops: Optional[int],
    unread: int,
    queued_bytes: Optional[int] = 0,
    backlog_drops: Optional[int] = None,
    datagrams_per_drop: int = 1,
) -> Balance:
    """Check sent = received + kernel_drops + unread; say by how much it is off.

    ``datagrams_per_drop`` > 1: the drop counter counts GRO buffers of up to
    that many datagrams, so it explains between 1x and that many times its
    value; ``unaccounted`` is then what lies outside that range.
    ``queued_bytes``: the receiver socket's queue (/proc/net/udp rx_queue)
    after its report; bytes still there were neither received nor reported
    unread. ``backlog_drops``: the machine-wide softnet drop counter's rise
    over the measurement, quoted when the counts are off.
    """
    if kernel_drops is None:
        return Balance(None, None, "counts not checked: the socket's drop counter was unreadable")
    missing = sent - received - unread
    problems = []
    explained = ""
    if datagrams_per_drop > 1 and kernel_drops < missing <= kernel_drops * datagrams_per_drop:
        # Whole GRO buffers dropped: inside what the counter can stand for.
        explained = f"kernel drops here count whole GRO buffers (up to {datagrams_per_drop} datagrams each)"
        unaccounted = 0
    elif datagrams_per_drop > 1 and missing > kernel_drops * datagrams_per_drop:
        unaccounted = missing - kernel_drops * datagrams_per_drop
    else:
        unaccounted = missing - kernel_drops
    if unaccounted > 0:
        problems.append(
            f"counts do not add up: {unaccounted:,} of {sent:,} sent are neither received, "
            f"dropped by the kernel nor unread"
        )
    elif unaccounted < 0:
        problems.append(
            f"counts do not add up: {-unaccounted:,} more received + dropped + unread than the {sent:,} sent"
        )
    if queued_bytes:
        problems.append(f"{queued_bytes:,} bytes left unread in the socket's queue")
    if not problems:
        return Balance(True, 0, explained)
    if backlog_drops:
        problems.append(f"the machine's loopback backlog dropped {backlog_drops:,} meanwhile (all traffic)")
    return Balance(False, unaccounted, "; ".join(problems))


def softnet_drops() -> Optional[int]:
    """Packets dropped for a full per-CPU backlog, summed over CPUs (/proc/net/softnet_stat)."""
    try:
        with open("/proc/net/softnet_stat") as table:
            # One line per CPU, hexadecimal; the second column is "dropped".
            return sum(int(line.split()[1], 16) for line in table if line.strip())
    except (OSError, ValueError, IndexError):
        return None
