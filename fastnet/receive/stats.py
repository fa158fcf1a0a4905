"""A Receiver's counters, as one consistent snapshot.

Where each datagram sent to a Receiver's port ends up, exactly one of:

``packets``
    taken from the socket by the capture thread and put in the ring: either
    already handed to the consumer (``delivered``) or waiting in the ring
    (``in_ring``).
``kernel_drops``
    dropped by the kernel before it reached the socket's queue (queue full,
    and see below), as the kernel counts it for this socket.
``ring_overruns``
    read from the socket by the capture thread, then discarded because the
    ring was full (``on_full="drop"`` only).
``unread``
    still in the socket's queue when capture stopped, and read off and
    discarded then (``stop()``/``close()``), because no row of the ring was free.

So, once nothing is in flight or queued (the sender has finished and the
receiver has read its queue dry, or the receiver is closed):

    sent == packets + kernel_drops + ring_overruns + unread

and ``unread`` is 0 unless the receiver was stopped with datagrams still
queued.

``kernel_drops`` is read from the kernel (``SO_MEMINFO``, ``SK_MEMINFO_DROPS``)
each time a snapshot is taken, so it always equals the drops column of
/proc/net/udp (or udp6) for this socket. It is the socket's ``sk_drops``
counter, which also counts datagrams dropped for a bad UDP checksum, by a
socket filter (BPF), or by memory accounting limits, not only for a full
receive queue. On loopback checksums are not verified, so there it is queue
overflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from .diagnosis import diagnose

__all__ = ["ReceiverStats"]


@dataclass(frozen=True)
class ReceiverStats:
    """A snapshot of a Receiver's counters (see the module doc for the accounting)."""

    #: Datagrams put in the ring (delivered to the consumer or waiting there).
    packets: int = 0
    #: Bytes stored in those datagrams (truncated ones count ``slot_size``).
    bytes: int = 0
    #: Receive calls that put datagrams in the ring (each at most ``batch_size``).
    batches: int = 0
    #: Datagrams among ``packets`` longer than ``slot_size``, cut to the slot.
    truncated: int = 0
    #: Datagrams the kernel dropped for this socket (its own counter).
    kernel_drops: int = 0
    #: Datagrams read and discarded because the ring was full (``on_full="drop"``).
    ring_overruns: int = 0
    #: Receive calls whose datagrams were so discarded.
    ring_overrun_batches: int = 0
    #: Datagrams left queued in the socket when capture stopped, read off and discarded.
    unread: int = 0
    #: Datagrams among ``packets`` handed to the consumer so far.
    delivered: int = 0
    #: Datagrams among ``packets`` waiting in the ring for the consumer.
    in_ring: int = 0
    #: Sequence tracking (None unless the Receiver has ``seq``); see fastnet.SeqField.
    seq_lost: Optional[int] = None
    seq_gaps: Optional[int] = None
    seq_reordered: Optional[int] = None
    seq_duplicates: Optional[int] = None
    seq_short: Optional[int] = None
    #: Recording (None unless ``record()`` was called): datagrams written to
    #: the capture file so far, and datagrams not written: the recorder could
    #: not take them (the disk fell behind, or a write failed), or the ring
    #: had no room for them (``ring_overruns`` since recording began). Once the
    #: recording is finished (after stop), ``recorded + capture_dropped``
    #: is every datagram read from the socket since recording began:
    #: ``packets + ring_overruns`` when it began before start().
    recorded: Optional[int] = None
    capture_dropped: Optional[int] = None
    #: Frames (None unless the Receiver has ``frames=``): fastnet.FrameStats's
    #: counters. Every datagram the consumer took is in exactly one of
    #: ``packets_placed``, ``packets_late``, ``packets_duplicate`` and
    #: ``packets_rejected``.
    frames_complete: Optional[int] = None
    frames_incomplete: Optional[int] = None
    frames_missing: Optional[int] = None
    packets_placed: Optional[int] = None
    packets_late: Optional[int] = None
    packets_duplicate: Optional[int] = None
    packets_rejected: Optional[int] = None
    #: Recording frames (None unless ``record()`` was given a frame file):
    #: frames written to the file, and frames not written (the writer's
    #: queue was full because the disk fell behind, or a write failed).
    #: Once ``stop()`` has returned, their sum is every frame assembled:
    #: ``frames_complete + frames_incomplete`` when recording began before
    #: start().
    frames_written: Optional[int] = None
    frames_dropped: Optional[int] = None
    #: Settings the diagnosis reads: the socket's receive buffer as the
    #: kernel reports it (bytes, 0 if unknown), and the slot size.
    rcvbuf: int = 0
    slot_size: int = 0

    def as_dict(self) -> dict:
        """The counters as a plain dict (JSON-ready)."""
        return asdict(self)

    def diagnose(self) -> list[str]:
        """Short sentences naming where datagrams were lost or cut and what to change.

        Empty when nothing was lost. The rules are in fastnet/receive/diagnosis.py:
        kernel drops with a small buffer (the buffer size, ``net.core.rmem_max``,
        ``rcvbuf=``), kernel drops with a large one (the capture thread was not
        scheduled: ``cpu=``), ring overruns (a slow consumer), truncation
        (``slot_size=``), recorder drops, and losses before this host.
        """
        return diagnose(self.as_dict())

    @property
    def accounted(self) -> int:
        """``packets + kernel_drops + ring_overruns + unread``: every datagram that reached the socket."""
        return self.packets + self.kernel_drops + self.ring_overruns + self.unread
