"""Memory safety of the engines: what a call reads, writes and points at stays its own.

Each test here is the regression test of one finding of a review of the
Cython engine (src/) and says how the code before its fix failed. They run
on both engines where the behaviour is the engines' contract; a few drive
the Cython engine's own entry points (fastnet.engines._cengine) directly, where the
Python layer would never let the hazard through.
"""

import contextlib
import os
import socket as stdsocket
import sys
import threading
import time

import numpy as np
import pytest
from helpers import AVAILABLE
from tcp_helpers import encode, in_thread, tcp_pair

import fastnet
from fastnet import constants as C
from fastnet import engines as _backend

OFFLOAD = fastnet.features()["gso"] and fastnet.features()["gro"]
needs_offload = pytest.mark.skipif(not OFFLOAD, reason="kernel without UDP GSO/GRO")
needs_cython = pytest.mark.skipif("cython" not in AVAILABLE, reason="Cython engine not built")
needs_both = pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs both engines")

# socket(7) / Documentation/networking/timestamping.rst; the standard
# library names none of these.
SO_TIMESTAMPING = 37
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4


def rows_of(count, size, last=None):
    sizes = [size] * count
    if last is not None:
        sizes[-1] = last
    return [(i.to_bytes(4, "big") + bytes([i % 251]) * size)[:n] for i, n in enumerate(sizes)]


def send_gso(sender, address, payloads):
    batch = fastnet.Batch.from_payloads(payloads, family=sender.family)
    assert sender.send_batch(batch, address, gso=True) == len(payloads)


@contextlib.contextmanager
def udp_pair(backend, *, gro=False, family=stdsocket.AF_INET, host="127.0.0.1"):
    receiver = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend, gro=gro)
    sender = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend)
    try:
        receiver.bind((host, 0))
        receiver.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 8 << 20)
        sender.bind((host, 0))
        yield receiver, sender
    finally:
        receiver.close()
        sender.close()


def take_all(receiver, batch, timeout=2.0, limit=10000):
    """Rows of every recv_batch until the queue and carry-over are empty (bounded)."""
    rows = []
    n = receiver.recv_batch(batch, timeout=timeout)
    while True:
        rows += [
            (bytes(batch.payload(i)), bool(batch.truncated[i]), int(batch.timestamps[i])) for i in range(n)
        ]
        assert len(rows) <= limit
        try:
            n = receiver.recv_batch(batch, timeout=0)
        except BlockingIOError:
            return rows


# -- 1. send_frames uses the lengths it checked, never the live array -------------------


def _send_while_a_thread_raises_a_length(client, batch, row, raised):
    """send_frames on a non-blocking socket while another thread sets lengths[row] = raised.

    The other thread can only run while the sending thread has released the
    GIL: the switch interval is made huge, so that is inside the engine's
    system call (the Python layer up to it never waits). Returns (frames
    sent, whether the length changed during the call).
    """
    gate = threading.Lock()
    gate.acquire()
    changed = threading.Event()

    def raise_length():
        with gate:
            batch.lengths[row] = raised
        changed.set()

    thread = threading.Thread(target=raise_length, daemon=True)
    thread.start()
    time.sleep(0.05)  # let it block on the gate
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5.0)  # far longer than the Python code up to the system call
    try:
        gate.release()
        sent = client.send_frames(batch)
        during = changed.is_set()
    finally:
        sys.setswitchinterval(interval)
    thread.join(10)
    assert not thread.is_alive()
    return sent, during


def _drain(sock, nbytes, timeout=20.0):
    out = bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < nbytes:
        assert time.monotonic() < deadline, f"only {len(out)} of {nbytes} bytes arrived"
        chunk = stdsocket.socket.recv(sock, 1 << 20)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def test_held_tail_is_the_frame_that_was_checked(backend):
    """A length raised during the send never reaches the wire.

    Before the fix the Cython engine read lengths[] again after sendmsg: the
    held rest of the partly written frame 1 was copied with the raised
    length, so 8 MiB past what its prefix announced went out (wrong bytes on
    the wire: the stream no longer parsed).
    """
    slot = 16 << 20
    declared = slot // 2
    batch = fastnet.Batch(2, slot)
    batch.data[0, :1000] = 7
    batch.data[1] = np.resize(np.arange(251, dtype=np.uint8), slot)
    expected = encode([bytes(batch.data[0, :1000]), bytes(batch.data[1, :declared])])
    deadline = time.monotonic() + 60
    for _ in range(20):  # bounded: the other thread must run during the system call
        if time.monotonic() > deadline:
            break
        batch.lengths[:2] = (1000, declared)
        batch.count = 2
        with tcp_pair(backend, rcvbuf=1 << 20, sndbuf=1 << 20) as (client, server_side):
            client.setblocking(False)
            sent, interleaved = _send_while_a_thread_raises_a_length(client, batch, 1, slot)
            if not interleaved:
                continue
            assert sent == 2  # frame 1 was started: it counts, its rest is held
            assert client._frames.unsent < 4 + declared
            reader = in_thread(_drain, server_side, len(expected) + 1)
            client.setblocking(True)
            assert client.flush_frames() == 0
            client.shutdown(stdsocket.SHUT_WR)
            assert reader.result() == expected
            return
    pytest.skip("the other thread never ran during the system call")


def test_gso_send_uses_the_lengths_of_its_plan(backend):
    """The GSO plan is the caller's; rows whose lengths left it are refused, not sent."""
    with udp_pair(backend) as (receiver, sender):
        batch = fastnet.Batch.from_payloads(rows_of(10, 100))
        engine = _backend.load(backend)
        batch.lengths[3] = 50  # as if written by another thread after the plan
        with pytest.raises(ValueError, match="GSO plan"):
            engine.send_batch(sender._engine_state, batch, 0, 10, receiver.getsockname(), 100, 10)
        with pytest.raises(BlockingIOError):
            receiver.recv_batch(fastnet.Batch(4, 100), timeout=0)


# -- 2. control data: sized for what the socket produces, lengths checked, cuts counted --


def _timestamping(receiver):
    receiver.setsockopt(
        stdsocket.SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE
    )


@needs_offload
@pytest.mark.parametrize("stamps", ["timestamping+timestampns", "timestamping"])
def test_gro_with_so_timestamping_keeps_every_datagram(backend, stamps):
    """SO_TIMESTAMPING's 64 bytes of control data no longer push out UDP_GRO's.

    Before the fix (80 bytes of control per message): with SO_TIMESTAMPNS as
    well, UDP_GRO did not fit, and 128 datagrams of 700 bytes came out as 2
    rows of 2048 bytes flagged truncated, on both engines; with
    SO_TIMESTAMPING alone its header fitted with no segment size behind it
    (cmsg_len 16): the Python engine ignored it (2 rows again), the Cython
    engine read the 4 bytes after it, from the next message's control area,
    and split the buffers at whatever they held.
    """
    with udp_pair(backend, gro=True) as (receiver, sender):
        _timestamping(receiver)
        if stamps == "timestamping+timestampns":
            receiver.enable_timestamps()
        payloads = [bytes([i]) * 700 for i in range(128)]
        for _ in range(3):
            send_gso(sender, receiver.getsockname(), payloads)
        rows = take_all(receiver, fastnet.Batch(1024, 2048))
        assert [(p, cut) for p, cut, _ in rows] == [(p, False) for p in payloads * 3]
        if stamps == "timestamping+timestampns":
            assert all(stamp > 0 for _, _, stamp in rows)
        assert receiver.control_truncated == 0


@needs_offload
def test_gro_control_area_holds_every_socket_level_message(backend):
    """Every SOL_SOCKET message the kernel puts before UDP_GRO, at once: rows still exact."""
    with udp_pair(backend, gro=True) as (receiver, sender):
        _timestamping(receiver)
        receiver.enable_timestamps()
        receiver.setsockopt(stdsocket.SOL_SOCKET, C.SO_RXQ_OVFL, 1)
        for option in (75, 82):  # SO_RCVMARK (6.1), SO_RCVPRIORITY (6.5): if the kernel has them
            with contextlib.suppress(OSError):
                receiver.setsockopt(stdsocket.SOL_SOCKET, option, 1)
        # IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR, IP_RECVOPTS,
        # IP_RETOPTS: after UDP_GRO, in the rest of the room.
        for option in (8, 12, 13, 20, 6, 7):
            with contextlib.suppress(OSError):
                receiver.setsockopt(stdsocket.IPPROTO_IP, option, 1)
        payloads = rows_of(64, 900, 17)
        send_gso(sender, receiver.getsockname(), payloads)
        rows = take_all(receiver, fastnet.Batch(256, 1024))
        assert [p for p, _, _ in rows] == payloads and not any(cut for _, cut, _ in rows)
        assert receiver.control_truncated == 0


def test_plain_receive_counts_cut_control_data_and_keeps_the_timestamp(backend):
    """MSG_CTRUNC is counted, on both engines alike; the timestamp, first, is whole.

    SO_TIMESTAMPNS (32 bytes) and SO_TIMESTAMPING (64) overflow a plain
    receive's 80 bytes. Before the fix the cut was never looked at.
    """
    with udp_pair(backend) as (receiver, sender):
        _timestamping(receiver)
        receiver.enable_timestamps()
        before = time.time_ns()
        for i in range(5):
            sender.sendto(bytes([i]) * 10, receiver.getsockname())
        rows = take_all(receiver, fastnet.Batch(8, 64))
        assert [p for p, _, _ in rows] == [bytes([i]) * 10 for i in range(5)]
        assert all(stamp >= before for _, _, stamp in rows)
        assert not any(cut for _, cut, _ in rows)
        assert receiver.control_truncated == 5


def _cmsg(level, kind, payload, cmsg_len=None):
    """One control message as the kernel lays it out (64-bit: 16-byte header, 8-byte alignment)."""
    length = 16 + len(payload) if cmsg_len is None else cmsg_len
    raw = (
        length.to_bytes(8, sys.byteorder)
        + level.to_bytes(4, sys.byteorder, signed=True)
        + kind.to_bytes(4, sys.byteorder, signed=True)
        + payload
    )
    return raw + bytes(-len(raw) % 8)


@needs_cython
@pytest.mark.skipif(sys.maxsize < 2**32, reason="the layout above is 64-bit")
@pytest.mark.parametrize("last_message", [False, True])
def test_cut_gro_header_is_not_read_past_its_length(last_message):
    """A UDP_GRO header the kernel cut to 16 bytes (no payload) gives no segment size.

    This is what the kernel wrote with SO_TIMESTAMPING on and 80 bytes of
    room. The Python engine's rule (a payload shorter than 4 bytes is
    ignored) is now the Cython engine's too; with MSG_CTRUNC and no segment
    size the buffer is one row, flagged. In the last message of the area
    the 4 bytes after the header lay past the end of the control memory.
    """
    from fastnet.engines._cengine import _GroArea

    control = _cmsg(stdsocket.SOL_SOCKET, SO_TIMESTAMPING, bytes(48)) + _cmsg(
        C.SOL_UDP, C.UDP_GRO, b"", cmsg_len=16
    )
    area = _GroArea()
    payload = bytes(range(256)) * 175  # 44800 bytes: 64 datagrams of 700
    segment, stamp, cut = area._load_for_test(
        31 if last_message else 0, payload, control, stdsocket.MSG_CTRUNC
    )
    assert (segment, stamp, cut) == (0, 0, True)
    batch = fastnet.Batch(128, 65536)
    assert area._split_for_test(batch) == 1
    assert batch.lengths[0] == len(payload) and batch.truncated[0]


@pytest.mark.parametrize("flags,cut", [(0, False), (stdsocket.MSG_CTRUNC, True)])
def test_python_engine_flags_a_cut_without_segment_size(flags, cut):
    from fastnet.engines.python.offload import GroArea

    area = GroArea()
    area.load(
        1400, [(stdsocket.SOL_SOCKET, SO_TIMESTAMPING, bytes(48))], flags, ("127.0.0.1", 9), stdsocket.AF_INET
    )
    batch = fastnet.Batch(4, 2048)
    assert area.split(batch, 0) == 1
    assert bool(batch.truncated[0]) is cut


# -- 3. one call at a time per Batch -------------------------------------------------------


def _until_refused(call, timeout=10.0):
    """Call ``call()`` until it raises RuntimeError (bounded); return that error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            call()
        except RuntimeError as exc:
            return exc
        time.sleep(0.005)
    pytest.fail("a second call on a Batch in use was never refused")


def test_a_batch_in_use_refuses_a_second_call(backend):
    """While recv_batch waits with a Batch, every other batch call on it is refused.

    Before the fix the second calls ran: in the Cython engine a send_batch
    rewrote the message headers of the waiting receive, pointing them at its
    own stack, where the kernel would then write the source address.
    """
    batch = fastnet.Batch(8, 64)
    with udp_pair(backend) as (receiver, sender), udp_pair(backend) as (sink, other):
        waiting = in_thread(receiver.recv_batch, batch, 10)
        batch.fill(0, b"x")  # the rows a send would use; the receive overwrites them later
        error = _until_refused(lambda: other.send_batch(batch, sink.getsockname()))
        assert "in use" in str(error) and "recv_batch" in str(error)
        with pytest.raises(RuntimeError, match="in use"):
            sink.recv_batch(batch, timeout=0)
        with tcp_pair(backend) as (client, _):
            with pytest.raises(RuntimeError, match="in use"):
                client.send_frames(batch)
        sender.sendto(b"wake", receiver.getsockname())
        assert waiting.result() == 1
        assert bytes(batch.payload(0)) == b"wake"
        # Free again: the next call may use it.
        batch.fill(0, b"again")
        batch.count = 1
        assert other.send_batch(batch, sink.getsockname()) == 1
        assert take_all(sink, fastnet.Batch(64, 64))[-1][0] == b"again"


def test_batch_is_free_again_after_a_call_fails(backend):
    batch = fastnet.Batch(4, 16)
    with udp_pair(backend) as (receiver, _):
        with pytest.raises(BlockingIOError):
            receiver.recv_batch(batch, timeout=0)
        with pytest.raises(TimeoutError):
            receiver.recv_batch(batch, timeout=0.01)
        receiver.close()
        with pytest.raises(OSError):
            receiver.recv_batch(batch, timeout=0)
    with udp_pair(backend) as (receiver, sender):
        sender.sendto(b"ok", receiver.getsockname())
        assert receiver.recv_batch(batch, timeout=2) == 1


@needs_cython
def test_cython_engine_refuses_concurrent_use_of_a_batch_itself():
    """Called directly, from two threads at once, the engine still never shares headers.

    One thread receives, the other sends to it, on one Batch, straight into
    fastnet.engines._cengine: each call either runs alone on the Batch's headers or
    is refused. Before the fix both ran: rows got source addresses read from
    the sending call's stack (the receiver's own address), and sendmmsg
    failed with EFAULT on headers the receive had rewritten.
    """
    from fastnet.engines import _cengine as engine

    batch = fastnet.Batch(64, 32)
    with udp_pair("cython") as (receiver, sender):
        target, source = receiver.getsockname(), sender.getsockname()
        refused = [0, 0]
        stop = time.monotonic() + 2.0
        bad = []

        def sending():
            while time.monotonic() < stop:
                batch.lengths[:] = 32
                try:
                    engine.send_batch(sender._engine_state, batch, 0, 64, target)
                except RuntimeError:
                    refused[0] += 1
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError as exc:  # EFAULT: headers rewritten under the system call
                    bad.append(exc)
                    return

        thread = threading.Thread(target=sending, daemon=True)
        thread.start()
        while time.monotonic() < stop:
            try:
                n = engine.recv_batch(receiver._engine_state, batch, False)
            except RuntimeError:
                refused[1] += 1
                continue
            batch.count = n
            bad += [batch.address(i) for i in range(n) if batch.address(i) != source]
        thread.join(10)
        assert not bad
        engine.recv_batch(receiver._engine_state, batch, False)  # the Batch is free once both are done


# -- 4. the GRO path is chosen once; the split never computes a negative size -------------


def _hide_the_area_once(sock, backend):
    """Give ``sock`` an engine state whose next ``gro_path`` reads False: a decision racing a thread.

    The state it makes up is the one where another thread creates the area
    between this call's decision and its engine call. Returns the state;
    set its ``hide_once`` to arm it.
    """
    base = _backend.load(backend).SocketState

    class HidingState(base):
        hide_once = False

        @property
        def gro_path(self):
            if type(self).hide_once:
                type(self).hide_once = False
                return False
            return base.gro_path.__get__(self)

    old = sock._engine_state
    state = HidingState(sock.fileno(), sock._af, sock._kind, sock.proto)
    state.gro = old.gro
    old.close()
    sock._engine_state = state
    return state


@needs_offload
def test_a_call_that_chose_the_plain_path_never_touches_the_area(backend):
    """The engine takes the path the caller chose, under the caller's lock.

    Here the caller saw no area and chose the plain path while another
    thread (this test, holding the lock) is in the area. Before the fix the
    engine looked at the socket's GRO area again, found the area and split it
    without the lock: two threads splitting the same area (the row count
    showed it: 8 rows carried over came out).
    """
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend, gro=True)
    state = _hide_the_area_once(receiver, backend)
    try:
        receiver.bind(("127.0.0.1", 0))
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
            payloads = rows_of(40, 100)
            send_gso(sender, receiver.getsockname(), payloads)
            batch = fastnet.Batch(32, 100)
            assert receiver.recv_batch(batch, timeout=2) == 32  # 8 rows stay carried over
            got = [bytes(batch.payload(i)) for i in range(32)]
            receiver.enable_gro(False)  # from now on only the area sends calls down the GRO path
            with receiver._gro_lock:  # "another thread" is splitting the area
                type(state).hide_once = True
                racing = in_thread(receiver.recv_batch, fastnet.Batch(32, 100), 0)
                with pytest.raises(BlockingIOError):  # plain path, nothing queued
                    racing.result(timeout=10)
            got += [p for p, _, _ in take_all(receiver, batch)]
            assert got == payloads
    finally:
        receiver.close()


@needs_cython
@pytest.mark.parametrize(
    "size,offset", [(44800, -5), (700, 700), (700, 701), (44800, 44800), (44800, 10**9), (0, 1)]
)
def test_split_of_a_used_up_message_writes_nothing(size, offset):
    """A carry-over offset at or past the message's end never becomes a memcpy size.

    The code before the fix computed min(segment, length - offset): negative
    here, and memcpy took it as a size of nearly 2**64 (the process died of
    SIGSEGV; see the commit message). The empty message with offset 1 is
    what tests/fuzz/fuzz_gro.py found in the first fix.
    """
    from fastnet.engines._cengine import _GroArea

    area = _GroArea()
    gro = _cmsg(C.SOL_UDP, C.UDP_GRO, (700).to_bytes(4, sys.byteorder, signed=True))
    area._load_for_test(0, bytes(size), gro, 0, offset)
    batch = fastnet.Batch(8, 1024)
    batch.lengths[:] = -1
    assert area._split_for_test(batch) == 0
    assert (batch.lengths == -1).all() and not area._pending_for_test()


# -- 5. engine-side bounds of the framing calls ---------------------------------------------


@pytest.mark.parametrize("call", ["send_frames", "recv_frames", "flush_unsent"])
def test_engine_framing_calls_refuse_no_frame_state(backend, call):
    """Before the fix the Cython engine took None for a FrameState and read its
    fields from the None object's memory (send_frames returned 0)."""
    engine = _backend.load(backend)
    batch = fastnet.Batch.from_payloads([b"abc"])
    with tcp_pair(backend) as (client, server_side):
        args = {
            "send_frames": (client, batch, 0, 1, None),
            "recv_frames": (client, batch, None),
            "flush_unsent": (client, None),
        }[call]
        with pytest.raises(TypeError):
            getattr(engine, call)(*args)
        server_side.setblocking(False)
        with pytest.raises(BlockingIOError):
            server_side.recv(1)


@pytest.mark.parametrize("start,stop", [(0, 5000), (-1, 1), (2, 1), (0, 2**40)])
def test_engine_send_frames_checks_its_rows(backend, start, stop):
    """Rows outside the Batch are refused before any system call.

    Before the fix the Cython engine read lengths (and rows) past the end of
    the arrays: a ValueError if the heap there happened to hold a bad
    length, else those bytes went out.
    """
    engine = _backend.load(backend)
    batch = fastnet.Batch.from_payloads([b"abc"])
    with tcp_pair(backend) as (client, server_side):
        with pytest.raises(ValueError, match="out of range"):
            engine.send_frames(client._engine_state, batch, start, stop, engine.FrameState())
        server_side.setblocking(False)
        with pytest.raises(BlockingIOError):
            server_side.recv(1)


def test_value_error_after_frames_went_out_says_how_many(backend):
    """A length gone bad in a later gathered write: ``exc.sent`` is what is on the wire.

    The Cython engine checks each write's 512 frames as it builds it; the
    Python engine reads all lengths first. Before the fix the Cython engine's
    ValueError carried no ``sent`` although 512 frames were out.
    """
    engine = _backend.load(backend)
    frames = [bytes([i % 256]) * 3 for i in range(600)]
    batch = fastnet.Batch.from_payloads(frames, slot_size=3)
    batch.lengths[550] = 99  # past the slot, as if written by another thread
    with tcp_pair(backend) as (client, server_side):
        with pytest.raises(ValueError) as info:
            engine.send_frames(client._engine_state, batch, 0, 600, engine.FrameState())
        sent = getattr(info.value, "sent", 0)
        client.close()
        server_side.settimeout(10)
        wire = _drain(server_side, 1 << 30)
        assert wire == encode(frames[:sent])
        assert sent in (0, 512)


def test_send_batch_value_error_part_way_carries_the_rows_sent(backend):
    """An engine's ValueError in a later call of one send_batch says what went out before.

    The engine here sends 3 rows, then meets a length gone bad (as when
    another thread writes lengths between two calls). Before, the error
    carried no ``sent``: the 3 datagrams delivered were not accounted for.
    """
    engine = _backend.load(backend)

    class PartWay:
        calls = 0

        def send_batch(self, state, batch, start, stop, *args):
            PartWay.calls += 1
            if PartWay.calls == 1:
                return engine.send_batch(state, batch, start, start + 3, *args)
            raise ValueError("batch.lengths[3] changed")

    with udp_pair(backend) as (receiver, sender):
        sender._engine = PartWay()
        with pytest.raises(ValueError) as info:
            sender.send_batch(fastnet.Batch.from_payloads([b"a"] * 10), receiver.getsockname(), gso=False)
        assert info.value.sent == 3
        assert len(take_all(receiver, fastnet.Batch(16, 8))) == 3


# -- 6. SCM_TIMESTAMP and SCM_TIMESTAMPNS: the engines agree, byte for byte ---------------


@contextlib.contextmanager
def _broadcast_receivers(gro):
    """One socket per engine bound to the loopback broadcast address and the same port.

    The kernel delivers each datagram to both, as clones of one buffer, so
    both see the same receive time (skb->tstamp).
    """
    sockets = []
    try:
        port = 0
        for name in AVAILABLE:
            sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=name, gro=gro)
            sockets.append(sock)
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 8 << 20)
            sock.bind(("127.255.255.255", port))
            port = sock.getsockname()[1]
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _until_stamped_on_arrival(receivers, sender, target):
    """Probe until every receiver sees the same receive time for one datagram (bounded).

    The kernel stamps a datagram on arrival only while some socket wants
    timestamps, and when none did it turns that on later, from a work queue
    (net/core/dev.c, net_enable_timestamp); until then each socket stamps
    its own clone when it reads it, at different times.
    """
    for _ in range(200):
        sender.sendto(b"probe", target)
        stamps = set()
        for sock in receivers:  # read with the standard library: the engines are under test
            sock.settimeout(2)
            _, ancdata, _, _ = stdsocket.socket.recvmsg(sock, 16, 256)
            stamps.add(b"".join(data for level, _, data in ancdata if level == stdsocket.SOL_SOCKET))
        if len(stamps) == 1 and b"" not in stamps:
            return
        time.sleep(0.01)
    pytest.skip("the kernel never stamped datagrams on arrival")


@needs_both
@pytest.mark.parametrize("gro", [False, pytest.param(True, marks=needs_offload)])
@pytest.mark.parametrize("option", [C.SO_TIMESTAMP, C.SO_TIMESTAMPNS])
def test_engines_fill_identical_batches_with_timestamps(option, gro):
    """Before the fix the Cython engine's plain receive ignored SCM_TIMESTAMP: 0 in
    every row where the Python engine had the receive time."""
    with _broadcast_receivers(gro) as receivers:
        for sock in receivers:
            sock.setsockopt(stdsocket.SOL_SOCKET, option, 1)
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="python") as sender:
            sender.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_BROADCAST, 1)
            target = ("127.255.255.255", receivers[0].getsockname()[1])
            _until_stamped_on_arrival(receivers, sender, target)
            for size in (0, 1, 300, 1400, 3000):
                sender.sendto(bytes([size % 256]) * size, target)
            if gro:
                send_gso(sender, target, rows_of(60, 500, 7))
                send_gso(sender, target, rows_of(9, 1000))
        calls = []
        for sock in receivers:
            batch = fastnet.Batch(7, 1024)
            seen = []
            for _ in range(100):
                try:
                    n = sock.recv_batch(batch, timeout=2 if not seen else 0)
                except BlockingIOError:
                    break
                seen.append(
                    (
                        n,
                        [bytes(batch.payload(i)) for i in range(n)],
                        *(
                            getattr(batch, name)[:n].tolist()
                            for name in (
                                "lengths",
                                "truncated",
                                "addresses",
                                "ports",
                                "flowinfo",
                                "scope_ids",
                                "timestamps",
                            )
                        ),
                    )
                )
            calls.append(seen)
        reference, *others = calls
        assert sum(call[0] for call in reference) == 5 + (69 if gro else 0)
        assert all(stamp > 0 for call in reference for stamp in call[-1])
        for other in others:
            assert other == reference


@pytest.mark.parametrize("option", [C.SO_TIMESTAMP, C.SO_TIMESTAMPNS])
def test_a_socket_made_from_a_stamping_fd_has_the_timestamps(backend, option):
    """Before, a dup() (or any fastnet.socket(fileno=...)) of a socket with
    timestamps on had 0 in every row on the pure-Python engine; the Cython
    engine had them only because it read control data whatever the options."""
    with udp_pair(backend) as (receiver, sender):
        receiver.setsockopt(stdsocket.SOL_SOCKET, option, 1)
        with receiver.dup() as twin:
            before = time.time_ns()
            sender.sendto(b"x", receiver.getsockname())
            batch = fastnet.Batch(2, 8)
            assert twin.recv_batch(batch, timeout=2) == 1
            assert batch.timestamps[0] >= before - 10**6  # SO_TIMESTAMP: microseconds


# -- 8. the GRO direct path, each branch on purpose ---------------------------------------


def _paths(receiver):
    """The Cython engine's GRO path counters, or None (built without FASTNET_GRO_COUNTERS)."""
    area = receiver._engine_state.gro_area
    return None if area is None else getattr(area, "path_counts", None)


def test_gro_counters_are_built_when_expected():
    """FASTNET_EXPECT_GRO_COUNTERS=1 (with a FASTNET_GRO_COUNTERS=1 build) makes the
    branch tests below prove, not only suggest, which branch ran."""
    if not os.environ.get("FASTNET_EXPECT_GRO_COUNTERS"):
        pytest.skip("FASTNET_EXPECT_GRO_COUNTERS is not set")
    from fastnet.engines._cengine import _GroArea

    assert _GroArea().path_counts is not None


@contextlib.contextmanager
def _direct_receiver(backend, family_host, slot):
    """A GRO receiver whose direct path is on for ``slot``: one burst of that size, all taken."""
    family, host = family_host
    with udp_pair(backend, gro=True, family=family, host=host) as (receiver, sender):
        teach = rows_of(8, slot)
        send_gso(sender, receiver.getsockname(), teach)
        assert [p for p, _, _ in take_all(receiver, fastnet.Batch(64, slot, family=family))] == teach
        if backend == "cython":
            assert receiver._engine_state.gro_area.direct_segment_size == slot
        yield receiver, sender


@needs_offload
@pytest.mark.parametrize("capacity,branch", [(200, "direct"), (10, "direct")])
def test_direct_path_segments_straight_into_rows(backend, family_host, capacity, branch):
    """Segments of the slot size, queued after the direct path is on: into the rows,
    with (capacity 10) the rest carried over from the overflow buffer."""
    family = family_host[0]
    with _direct_receiver(backend, family_host, 256) as (receiver, sender):
        before = _paths(receiver)
        payloads = rows_of(64, 256, 100)
        send_gso(sender, receiver.getsockname(), payloads)
        rows = take_all(receiver, fastnet.Batch(capacity, 256, family=family))
        assert [p for p, _, _ in rows] == payloads and not any(c for _, c, _ in rows)
        after = _paths(receiver)
        if after is not None:
            assert after[branch] == before[branch] + 1
        if backend == "cython":
            assert receiver._engine_state.gro_area.direct_segment_size == 256


@needs_offload
@pytest.mark.parametrize("capacity", [1, 4])
def test_direct_path_plain_datagram(backend, family_host, capacity):
    """A datagram the kernel did not coalesce, in direct mode: one row, cut to the slot,
    also when it runs on past the free rows into the overflow buffer."""
    family = family_host[0]
    with _direct_receiver(backend, family_host, 256) as (receiver, sender):
        before = _paths(receiver)
        plain = [b"p" * 100, b"q" * 256, b"r" * 1500]
        batch = fastnet.Batch(capacity, 256, family=family)
        got = []
        for payload in plain:  # each reaches the direct path on its own
            sender.sendto(payload, receiver.getsockname())
            got += take_all(receiver, batch)
            # Plain traffic turns the direct path off: turn it on again.
            send_gso(sender, receiver.getsockname(), rows_of(4, 256))
            assert [p for p, _, _ in take_all(receiver, fastnet.Batch(8, 256, family=family))] == rows_of(
                4, 256
            )
        assert [(p, c) for p, c, _ in got] == [(p[:256], len(p) > 256) for p in plain]
        after = _paths(receiver)
        if after is not None:
            assert after["direct_plain"] == before["direct_plain"] + 3


@needs_offload
@pytest.mark.parametrize(
    "count,size,capacity,branch",
    [
        (8, 100, 16, "direct_changed"),  # the buffer fits in the free rows
        (20, 300, 4, "direct_changed_overflow"),  # it runs on into the overflow buffer
    ],
)
def test_direct_path_segment_change(backend, family_host, count, size, capacity, branch):
    """Another segment size in direct mode: gathered (from the rows, and from the overflow
    buffer when longer than them) and split like the batched path."""
    family = family_host[0]
    with _direct_receiver(backend, family_host, 256) as (receiver, sender):
        before = _paths(receiver)
        payloads = rows_of(count, size, size // 3)
        send_gso(sender, receiver.getsockname(), payloads)
        rows = take_all(receiver, fastnet.Batch(capacity, 256, family=family))
        assert [(p, c) for p, c, _ in rows] == [(p[:256], len(p) > 256) for p in payloads]
        after = _paths(receiver)
        if after is not None:
            assert after[branch] == before[branch] + 1
        if backend == "cython":
            assert receiver._engine_state.gro_area.direct_segment_size == 0


# -- 8. the C GRO split is a fuzz target -----------------------------------------------------


@needs_cython
def test_gro_fuzz_target_runs_on_random_inputs():
    """A bounded, seeded random run of tests/fuzz/fuzz_gro.py (beyond its saved corpus)."""
    import importlib.util
    import random

    fuzz = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz")
    spec = importlib.util.spec_from_file_location("fastnet_fuzz_run", os.path.join(fuzz, "run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    fuzz_gro = run.load_target("gro")
    rng = random.Random(8)
    pool = [open(path, "rb").read() for path in run.corpus_files("gro")]
    assert pool
    for _ in range(300):
        fuzz_gro.test_one_input(run.mutate(rng, rng.choice(pool), pool))
