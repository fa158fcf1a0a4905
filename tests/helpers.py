"""Small helpers shared by the tests."""

import os
import signal
import socket as stdsocket
import subprocess
import sys
import time

import fastnet

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


def receive_exactly(receiver, count, slot_size, *, family=fastnet.AF_INET, timeout=5.0,
                    capacity=None):
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
    """Run ``child_code`` (it prints "ready", then blocks; on KeyboardInterrupt
    it prints "interrupted after ..." and exits 0), send it SIGINT, check that."""
    child = subprocess.Popen([sys.executable, "-c", child_code, backend],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=10)
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
        if int(fields[2]) == pgid and fields[0] != "Z":   # fields: state ppid pgrp
            found.append(int(entry))
    return found
