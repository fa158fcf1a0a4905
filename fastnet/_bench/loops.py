"""The sender and receiver loops of the Python backends, run inside a peer process.

Each loop measures itself: wall time and CPU time (``getrusage(RUSAGE_SELF)``,
user + system) taken just around the loop, so interpreter start-up, imports
and socket set-up are not counted. A receiver also notes when its first and
last datagrams arrived, so its rate is taken over the time it was receiving,
drain included.

Receivers stop when the peer's ``StopFlag`` has been set (the runner sends
SIGUSR1 once the sender has exited) and no datagram has arrived for
``IDLE_S``: the queue has drained. If the drain runs out of time, what is
still queued is taken without being counted as received and reported as
``unread``, so the runner can check that the counts add up. Every loop is
bounded in time.

Backends: ``receive_batches``/``send_batches`` (fastnet sockets, either
engine), ``receive_stdlib``/``send_stdlib`` (a plain ``socket.socket``: what
a user writes without fastnet), ``receive_asyncio``/``send_asyncio`` (a
``DatagramProtocol``, on asyncio's own loop or on uvloop's), and
``send_paced`` (a fastnet sender held to a rate, for the loss-free search).
"""

from __future__ import annotations

import asyncio
import functools
import resource
import time
from typing import Any

__all__ = [
    "StopFlag",
    "receive_batches",
    "send_batches",
    "send_paced",
    "receive_stdlib",
    "send_stdlib",
    "receive_asyncio",
    "send_asyncio",
    "IDLE_S",
    "DRAIN_MAX_S",
    "ROWS",
    "PACED_BURST",
]

#: Datagrams per batch call (sendmmsg/recvmmsg take at most UIO_MAXIOV = 1024).
ROWS = 1024
#: After the stop signal, an empty queue for this long means it has drained.
IDLE_S = 0.05
#: Bound on the drain after the stop signal.
DRAIN_MAX_S = 3.0
#: How often the asyncio receiver looks at its counter.
TICK_S = 0.005
#: Datagrams the asyncio sender hands to the transport between yields to the loop.
ASYNCIO_CHUNK = 256
#: Datagrams the stdlib sender sends between looks at the clock.
STDLIB_CHUNK = 64
#: Datagrams per call of a paced sender (one GSO super-buffer's worth): small
#: bursts, so a loss-free rate is not lost to one oversized burst.
PACED_BURST = 64
#: Bound on taking (uncounted) what is still queued when the drain times out.
UNREAD_MAX_S = 2.0
#: A paced sender sleeps when its next burst is further off than this, else spins
#: (a sleep that short overshoots by about as much on a busy machine).
SPIN_S = 200e-6


class StopFlag:
    """Set from the SIGUSR1 handler: the sender is done."""

    __slots__ = ("requested",)

    def __init__(self):
        self.requested = False

    def set(self, *_signal_args) -> None:
        self.requested = True


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _receiver_report(received, first_count, t_first, t_last, cpu, drain_timed_out, timed_out, unread=0):
    return {
        "received": received,
        "first_count": first_count,
        # time.monotonic() is CLOCK_MONOTONIC, one clock for every process
        # (and for reference.c): compared with the sender's t_end, it says
        # how far behind the receiver was when the sender stopped.
        "t_last": t_last,
        "window_s": max(0.0, t_last - t_first),
        "cpu_s": cpu,
        "drain_timed_out": drain_timed_out,
        "timed_out": timed_out,
        "unread": unread,
    }


def count_unread(take) -> int:
    """Datagrams still queued, taken with ``take()`` (a count, 0 once empty), not counted as received.

    Bounded by UNREAD_MAX_S: past it the rest stays queued, and the runner
    sees it in the socket's queue (/proc/net/udp) and says the row does not add up.
    """
    unread = 0
    end = time.monotonic() + UNREAD_MAX_S
    while time.monotonic() < end:
        n = take()
        if not n:
            break
        unread += n
    return unread


def _take_plain(sock, size: int):
    """A ``take`` for count_unread on any socket without GRO: one datagram per call."""
    buffer = bytearray(max(size, 1))
    sock.setblocking(False)

    def take() -> int:
        try:
            sock.recv_into(buffer)
        except BlockingIOError:
            return 0
        return 1

    return take


# -- fastnet sockets (cython, cython-gso, python) ---------------------------------


def receive_batches(sock, size: int, stop: StopFlag, max_seconds: float) -> dict:
    """Count datagrams taken with ``sock.recv_batch`` until stopped and drained."""
    import fastnet

    batch = fastnet.Batch(ROWS, size, family=sock.family)
    recv = sock.recv_batch
    monotonic = time.monotonic
    received = first_count = 0
    t_first = t_last = 0.0
    drain_end = None
    drain_timed_out = timed_out = False
    cpu0 = cpu_seconds()
    hard_end = monotonic() + max_seconds
    while True:
        if drain_end is None and stop.requested:
            drain_end = monotonic() + DRAIN_MAX_S
        try:
            n = recv(batch, IDLE_S)
        except TimeoutError:
            if stop.requested:
                break  # sender done, queue empty
            if monotonic() > hard_end:
                timed_out = True
                break
            continue
        now = monotonic()
        if not received:
            t_first = now
            first_count = n
        t_last = now
        received += n
        if drain_end is not None and now > drain_end:
            drain_timed_out = True
            break
        if now > hard_end:
            timed_out = True
            break
    cpu = cpu_seconds() - cpu0
    unread = 0
    if drain_timed_out or timed_out:

        def take() -> int:
            try:
                return recv(batch, 0.0)
            except (TimeoutError, BlockingIOError):
                return 0

        unread = count_unread(take)
    return _receiver_report(received, first_count, t_first, t_last, cpu, drain_timed_out, timed_out, unread)


def send_batches(sock, size: int, address, duration: float, gso: bool) -> dict:
    """Send ``size``-byte datagrams with ``sock.send_batch`` for ``duration`` seconds."""
    import numpy as np

    import fastnet

    batch = fastnet.Batch(ROWS, size, family=sock.family)
    # Distinct rows, as an application's data would be (not one hot buffer).
    batch.data[:] = (np.arange(ROWS) % 251).astype(np.uint8)[:, None]
    batch.lengths[:] = size
    batch.count = ROWS
    # Explicit both ways: send_batch's default (gso=None) would use GSO for
    # these equal rows, and the plain rows must measure plain sendmmsg.
    send = functools.partial(sock.send_batch, gso=bool(gso))
    monotonic = time.monotonic
    sent = 0
    cpu0 = cpu_seconds()
    start = now = monotonic()
    end = start + duration
    while now < end:
        sent += send(batch, address)
        now = monotonic()
    cpu = cpu_seconds() - cpu0
    return {"sent": sent, "wall_s": now - start, "cpu_s": cpu, "t_end": now}


def send_paced(sock, size: int, address, duration: float, rate: float, gso: bool) -> dict:
    """Send ``rate`` datagrams/s, PACED_BURST per ``send_batch``, for ``duration`` seconds.

    Each burst waits until its time (start + sent / rate) comes; a sender
    that falls behind sends at once and does not catch up in one big burst.
    No burst is due after the window, so at most rate * duration + one
    burst go out.
    """
    import numpy as np

    import fastnet

    batch = fastnet.Batch(PACED_BURST, size, family=sock.family)
    batch.data[:] = (np.arange(PACED_BURST) % 251).astype(np.uint8)[:, None]
    batch.lengths[:] = size
    batch.count = PACED_BURST
    send = functools.partial(sock.send_batch, gso=bool(gso))
    monotonic = time.monotonic
    sent = 0
    cpu0 = cpu_seconds()
    start = now = monotonic()
    end = start + duration
    while now < end:
        due = start + sent / rate
        if due >= end:
            break  # the next burst would fall after the window
        if due - now > SPIN_S:
            time.sleep(due - now - SPIN_S / 2)
        while monotonic() < due:
            pass
        sent += send(batch, address)
        now = monotonic()
    cpu = cpu_seconds() - cpu0
    return {"sent": sent, "wall_s": now - start, "cpu_s": cpu, "t_end": now}


# -- the standard library's socket, as a user would write it without fastnet ------


def receive_stdlib(sock, size: int, stop: StopFlag, max_seconds: float) -> dict:
    """Count datagrams taken one by one with ``socket.recvfrom_into`` until stopped and drained."""
    buffer = bytearray(max(size, 1))
    sock.settimeout(IDLE_S)
    recvfrom_into = sock.recvfrom_into
    monotonic = time.monotonic
    received = first_count = 0
    t_first = t_last = 0.0
    drain_end = None
    drain_timed_out = timed_out = False
    cpu0 = cpu_seconds()
    hard_end = monotonic() + max_seconds
    while True:
        if drain_end is None and stop.requested:
            drain_end = monotonic() + DRAIN_MAX_S
        try:
            recvfrom_into(buffer)
        except TimeoutError:
            if stop.requested:
                break
            if monotonic() > hard_end:
                timed_out = True
                break
            continue
        # The clock is read per datagram, as the batch loops read it per batch:
        # the window must end at the last arrival.
        now = monotonic()
        if not received:
            t_first = now
            first_count = 1
        t_last = now
        received += 1
        if drain_end is not None and now > drain_end:
            drain_timed_out = True
            break
        if now > hard_end:
            timed_out = True
            break
    cpu = cpu_seconds() - cpu0
    unread = count_unread(_take_plain(sock, size)) if drain_timed_out or timed_out else 0
    return _receiver_report(received, first_count, t_first, t_last, cpu, drain_timed_out, timed_out, unread)


def send_stdlib(sock, size: int, address, duration: float) -> dict:
    """Send one ``size``-byte payload with ``socket.sendto`` over and over for ``duration`` seconds.

    ``address`` None: the socket is connected, and ``socket.send`` is used.
    """
    payload = bytes([0x5A]) * size
    chunk = range(STDLIB_CHUNK)
    monotonic = time.monotonic
    sent = 0
    cpu0 = cpu_seconds()
    start = now = monotonic()
    end = start + duration
    # Two loops rather than a wrapper: the call per datagram is what is measured.
    if address is None:
        send = sock.send
        while now < end:
            for _ in chunk:
                send(payload)
            sent += STDLIB_CHUNK
            now = monotonic()
    else:
        sendto = sock.sendto
        while now < end:
            for _ in chunk:
                sendto(payload, address)
            sent += STDLIB_CHUNK
            now = monotonic()
    cpu = cpu_seconds() - cpu0
    return {"sent": sent, "wall_s": now - start, "cpu_s": cpu, "t_end": now}


# -- asyncio's datagram transport, on asyncio's loop or uvloop's --------------------


def run_loop(coroutine, loop_factory):
    """Run ``coroutine`` on a new event loop made by ``loop_factory`` (None: asyncio's)."""
    if loop_factory is None:
        return asyncio.run(coroutine)
    loop = loop_factory()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


class _Counter(asyncio.DatagramProtocol):
    def __init__(self):
        self.count = 0
        self.errors = 0

    def datagram_received(self, data, addr):
        self.count += 1

    def error_received(self, exc):
        self.errors += 1


def receive_asyncio(sock, stop: StopFlag, max_seconds: float, loop_factory=None) -> dict:
    """Count datagrams delivered to a DatagramProtocol on ``sock``.

    ``loop_factory`` makes the event loop (``uvloop.new_event_loop``); None: asyncio's own.
    """
    report = run_loop(_receive_asyncio(sock, stop, max_seconds), loop_factory)
    if report["drain_timed_out"] or report["timed_out"]:
        report["unread"] = count_unread(_take_plain(sock, 65536))
    return report


async def _receive_asyncio(sock, stop, max_seconds):
    loop = asyncio.get_running_loop()
    # The transport closes the socket it is given; give it a duplicate so the
    # socket itself outlives it until the runner has read its drop counter.
    transport, counter = await loop.create_datagram_endpoint(_Counter, sock=sock.dup())
    done = loop.create_future()
    monotonic = time.monotonic
    state: dict[str, Any] = {
        "last": 0,
        "first_count": 0,
        "t_first": 0.0,
        "t_last": 0.0,
        "drain_end": None,
        "drain_timed_out": False,
        "timed_out": False,
    }
    cpu0 = cpu_seconds()
    hard_end = monotonic() + max_seconds

    # The protocol only counts (what a receiver does per datagram is the
    # application's business); times are read every TICK_S instead of per
    # datagram, which would slow this path more than the others.
    def tick():
        now = monotonic()
        count = counter.count
        if count != state["last"]:
            if not state["last"]:
                state["t_first"], state["first_count"] = now, count
            state["t_last"], state["last"] = now, count
        quiet = now - max(state["t_last"], start) >= IDLE_S
        if stop.requested:
            if state["drain_end"] is None:
                state["drain_end"] = now + DRAIN_MAX_S
            if quiet:
                done.set_result(None)
                return
            if now > state["drain_end"]:
                state["drain_timed_out"] = True
                done.set_result(None)
                return
        elif now > hard_end:
            state["timed_out"] = True
            done.set_result(None)
            return
        loop.call_later(TICK_S, tick)

    start = monotonic()
    loop.call_later(TICK_S, tick)
    try:
        await done
    finally:
        transport.close()
    cpu = cpu_seconds() - cpu0
    return _receiver_report(
        counter.count,
        state["first_count"],
        state["t_first"],
        state["t_last"],
        cpu,
        state["drain_timed_out"],
        state["timed_out"],
    )


class _Sending(asyncio.DatagramProtocol):
    """Flow control as the transport offers it: pause above its high-water mark."""

    def __init__(self):
        self.errors = 0
        self.resumed = None

    def pause_writing(self):
        self.resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)
        self.resumed = None

    def error_received(self, exc):
        # The transport drops the datagram whose sendto failed, after this call.
        self.errors += 1


def send_asyncio(size: int, address, duration: float, loop_factory=None, connect: bool = False) -> dict:
    """Send with ``transport.sendto`` for ``duration`` seconds, yielding to the loop.

    ``connect``: the endpoint is made with ``remote_addr`` and sends without an address.
    """
    return run_loop(_send_asyncio(size, address, duration, connect), loop_factory)


async def _send_asyncio(size, address, duration, connect=False):
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Sending, local_addr=("127.0.0.1", 0), remote_addr=address if connect else None
    )
    if connect:
        address = None
    payload = bytes([0x5A]) * size
    sendto = transport.sendto
    # The loop's datagram transports have it; typeshed's DatagramTransport does not.
    buffered = transport.get_write_buffer_size  # type: ignore[attr-defined]
    chunk = range(ASYNCIO_CHUNK)
    monotonic = time.monotonic
    calls = 0
    cpu0 = cpu_seconds()
    start = now = monotonic()
    end = start + duration
    try:
        while now < end:
            for _ in chunk:
                sendto(payload, address)
            calls += ASYNCIO_CHUNK
            if protocol.resumed is not None:
                await protocol.resumed
            else:
                await asyncio.sleep(0)
            now = monotonic()
        # Datagrams the transport buffered (EAGAIN) go out when the loop runs.
        flush_end = monotonic() + 2.0
        while buffered() and monotonic() < flush_end:
            await asyncio.sleep(0.001)
        t_end = monotonic()
        wall = t_end - start
        cpu = cpu_seconds() - cpu0
        unsent = -(-buffered() // size)  # at most this many
    finally:
        transport.abort()
    sent = max(0, calls - protocol.errors - unsent)
    return {"sent": sent, "wall_s": wall, "cpu_s": cpu, "t_end": t_end}
