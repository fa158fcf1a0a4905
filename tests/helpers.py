"""Small helpers shared by the tests."""

import os
import signal
import socket as stdsocket
import subprocess
import sys
import threading
import time

import fastnet

#: How long a call that should end at once may take before it counts as hung:
#: generous, since the test machines are shared and noisy. Tests never check
#: how long anything took; this only turns a hang into a failure.
HANG_S = 30.0

#: The backends that load here; every behavioural test runs on each.
AVAILABLE = fastnet.available_backends()


def _has_ipv6_loopback():
    try:
        with stdsocket.socket(stdsocket.AF_INET6, stdsocket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6_loopback()


def receive_exactly(receiver, count, slot_size, *, family=fastnet.AF_INET, timeout=HANG_S, capacity=None):
    """Receive ``count`` datagrams with recv_batch; return (payloads, addresses, truncated)."""
    capacity = capacity or max(1, min(count, 1024))
    batch = fastnet.Batch(capacity, slot_size, family=family)
    payloads, addresses, truncated = [], [], []
    deadline = time.monotonic() + timeout
    while len(payloads) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(payloads)} of {count} datagrams arrived"
        n = receiver.recv_batch(batch, timeout=remaining)
        assert n == batch.count == len(batch)
        for i in range(n):
            payloads.append(bytes(batch.payload(i)))
            addresses.append(batch.address(i))
            truncated.append(bool(batch.truncated[i]))
    return payloads, addresses, truncated


def numbered_payloads(count, size):
    """``count`` distinct payloads of ``size`` bytes (a row number then a fill byte)."""
    out = []
    for i in range(count):
        head = i.to_bytes(4, "big")[:size]
        out.append(head + bytes([i % 251]) * (size - len(head)))
    return out


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_ctrl_c_interrupts(child_code, backend):
    """Run ``child_code`` (it prints "ready" inside the try that catches
    KeyboardInterrupt, then blocks; on KeyboardInterrupt it prints
    "interrupted after ..." and exits 0), send it SIGINT, check that."""
    child = subprocess.Popen(
        [sys.executable, "-c", child_code, backend], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        # Only so that the signal most often finds the call blocked: the
        # outcome is the same if it comes before (ready is inside the try).
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=HANG_S)
    finally:
        child.kill()
    assert child.returncode == 0
    assert out.startswith("interrupted after")


def send_numbered(sender, address, start, count, size=64):
    """Send datagrams numbered ``start..start+count-1`` (64-bit big-endian at offset 0)."""
    import numpy as np

    batch = fastnet.Batch(min(count, 1024), size, family=sender.family)
    sent = 0
    while sent < count:
        n = min(batch.capacity, count - sent)
        numbers = np.arange(start + sent, start + sent + n, dtype=">u8")
        batch.data[:n, :8] = numbers.view(np.uint8).reshape(n, 8)
        batch.lengths[:n] = size
        batch.count = n
        sent += sender.send_batch(batch, address)
    return sent


def numbers_in(batch):
    """The 64-bit big-endian numbers at offset 0 of a batch's rows."""
    import numpy as np

    n = batch.count
    return np.ascontiguousarray(batch.data[:n, :8]).view(">u8").reshape(n).tolist()


def proc_net_udp_drops(sock_fileno, family=fastnet.AF_INET):
    """The drops column of /proc/net/udp (udp6) for the socket with this fd's inode."""
    import os

    inode = str(os.fstat(sock_fileno).st_ino)
    table = "/proc/net/udp6" if family == fastnet.AF_INET6 else "/proc/net/udp"
    with open(table) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[9] == inode:
                return int(fields[-1])
    raise LookupError(f"inode {inode} not in {table}")


def udp_queue_on_port(port, family=fastnet.AF_INET):
    """``(sockets, bytes)``: UDP sockets bound to local ``port`` here and the bytes
    still queued to them (/proc/net/udp or udp6, rx_queue), for any process."""
    table = "/proc/net/udp6" if family == fastnet.AF_INET6 else "/proc/net/udp"
    sockets = queued = 0
    with open(table) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets += 1
                queued += int(fields[4].split(":")[1], 16)
    return sockets, queued


def wait_until_read(port, family=fastnet.AF_INET, timeout=HANG_S):
    """Wait until the sockets on ``port`` (another process's) have read all that
    was queued to them: the condition to wait for before stopping a receiver
    whose count must include what was sent. Fails only if that never happens."""
    deadline = time.monotonic() + timeout
    while True:
        sockets, queued = udp_queue_on_port(port, family)
        assert sockets, f"no UDP socket on port {port}"
        if not queued:
            return
        assert time.monotonic() < deadline, f"{queued} bytes still unread on port {port}"
        time.sleep(0.01)


def processes_in_group(pgid):
    """Live processes of a process group (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state ppid pgrp
            found.append(int(entry))
    return found


class _Runner(threading.Thread):
    def __init__(self, function, args):
        super().__init__(daemon=True)
        self._call = (function, args)
        self._outcome = None

    def run(self):
        function, args = self._call
        try:
            self._outcome = (True, function(*args))
        except BaseException as exc:  # handed to the test by result()
            self._outcome = (False, exc)

    def result(self, timeout=HANG_S):
        """Join (bounded); return the value or re-raise the exception."""
        self.join(timeout)
        assert not self.is_alive(), f"the thread did not finish in {timeout} s"
        ok, value = self._outcome
        if not ok:
            raise value
        return value


def in_thread(function, *args):
    """Start ``function(*args)`` in a thread; ``.result()`` gives its outcome.

    For a call that must end because of something else (a close, a stop from
    another thread): ``.result()`` fails the test if it has not ended within
    HANG_S seconds, a bound that only a hang reaches.
    """
    runner = _Runner(function, args)
    runner.start()
    return runner


class VirtualClock:
    """A monotonic clock that moves only when the code under test sleeps.

    Each reading advances it by ``TICK_NS`` (so a loop polling it for a
    deadline ends), each sleep by the time asked. Paced code then runs as fast
    as the machine lets it, and when it would have sent what is exact whatever
    the load: tests check pacing arithmetic on this clock, never on the real one
    (bench/pacing_accuracy.py measures the real rates).
    """

    TICK_NS = 1_000

    def __init__(self):
        self.now_ns = 1_000_000_000_000
        self.slept_ns = 0

    def monotonic_ns(self):
        self.now_ns += self.TICK_NS
        return self.now_ns

    def sleep(self, seconds):
        step = max(0, int(seconds * 1e9))
        self.now_ns += step
        self.slept_ns += step


def use_virtual_clock(monkeypatch):
    """Make the Sender, its pacing and replay read and sleep on a VirtualClock; return it."""
    import types

    from fastnet.send import pacing as _pacing
    from fastnet.send import replay as _replay
    from fastnet.send import sender as _sender

    clock = VirtualClock()
    monkeypatch.setattr(_pacing, "_monotonic_ns", clock.monotonic_ns)
    monkeypatch.setattr(_pacing, "_sleep", clock.sleep)
    monkeypatch.setattr(_sender, "_monotonic_ns", clock.monotonic_ns)
    monkeypatch.setattr(_replay, "time", types.SimpleNamespace(monotonic_ns=clock.monotonic_ns))
    return clock


def refuse_rcvbuf_force(monkeypatch):
    """Make SO_RCVBUFFORCE refused (EPERM), as for a process without CAP_NET_ADMIN; return rmem_max."""
    real = stdsocket.socket.setsockopt

    def setsockopt(sock, level, option, *args):
        if option == fastnet.constants.SO_RCVBUFFORCE:
            raise PermissionError(1, "Operation not permitted")
        return real(sock, level, option, *args)

    monkeypatch.setattr(stdsocket.socket, "setsockopt", setsockopt)
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())
