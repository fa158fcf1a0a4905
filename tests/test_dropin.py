"""fastnet.socket is a drop-in socket.socket: same defaults, same detection, same errors.

And everything that makes a socket for the caller (accept, dup, socketpair,
fromfd, create_connection, create_server) makes a fastnet socket on the same
engine; the batch methods check the kind the kernel reports for the fd.
"""

import errno
import io
import os
import socket as stdsocket
import sys

import pytest

import fastnet

pytestmark = pytest.mark.core


def kind(sock):
    return sock.family, sock.type, sock.proto


def open_fds():
    return set(os.listdir("/proc/self/fd"))


def test_defaults_are_the_standard_librarys(backend):
    with fastnet.socket(backend=backend) as sock, stdsocket.socket() as standard:
        assert kind(sock) == kind(standard) == (stdsocket.AF_INET, stdsocket.SOCK_STREAM, 0)
    with fastnet.socket(fastnet.AF_INET6, backend=backend) as sock:
        assert kind(sock) == (stdsocket.AF_INET6, stdsocket.SOCK_STREAM, 0)


@pytest.mark.parametrize(
    "family,type_",
    [
        (stdsocket.AF_INET, stdsocket.SOCK_STREAM),
        (stdsocket.AF_INET, stdsocket.SOCK_DGRAM),
        (stdsocket.AF_INET6, stdsocket.SOCK_DGRAM),
        (stdsocket.AF_UNIX, stdsocket.SOCK_STREAM),
    ],
)
def test_family_type_and_proto_are_read_from_fileno(backend, family, type_):
    with stdsocket.socket(family, type_) as original:
        with stdsocket.socket(fileno=os.dup(original.fileno())) as standard:
            expected = kind(standard)
        with fastnet.socket(fileno=os.dup(original.fileno()), backend=backend) as sock:
            assert kind(sock) == expected
            assert (sock.family, sock.type) == (family, type_)
            assert sock.backend == backend


def test_an_explicit_family_or_type_wins_over_detection_as_in_the_standard_library(backend):
    with stdsocket.socket() as a, stdsocket.socket() as b:
        expected = kind(stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM, fileno=os.dup(a.fileno())))
        with fastnet.socket(
            stdsocket.AF_INET, stdsocket.SOCK_DGRAM, fileno=os.dup(b.fileno()), backend=backend
        ) as sock:
            assert kind(sock) == expected  # what was said, right or wrong


def test_batch_methods_check_the_kind_the_kernel_reports(backend):
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM) as tcp:
        # Called SOCK_DGRAM, but a TCP socket: the datagram batches refuse it.
        with fastnet.socket(
            stdsocket.AF_INET, stdsocket.SOCK_DGRAM, fileno=os.dup(tcp.fileno()), backend=backend
        ) as sock:
            batch = fastnet.Batch(4, 64)
            with pytest.raises(
                io.UnsupportedOperation, match="needs a SOCK_DGRAM socket, this one is SOCK_STREAM"
            ):
                sock.recv_batch(batch, timeout=0)
            with pytest.raises(io.UnsupportedOperation, match="SOCK_STREAM"):
                sock.send_batch(batch, ("127.0.0.1", 9))
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as udp:
        with fastnet.socket(
            stdsocket.AF_INET, stdsocket.SOCK_STREAM, fileno=os.dup(udp.fileno()), backend=backend
        ) as sock:
            batch = fastnet.Batch(4, 64)
            with pytest.raises(
                io.UnsupportedOperation, match="needs a SOCK_STREAM socket, this one is SOCK_DGRAM"
            ):
                sock.recv_frames(batch, timeout=0)
            with pytest.raises(io.UnsupportedOperation, match="SOCK_DGRAM"):
                sock.send_frames(batch)
            # ... and the datagram batches take it.
            udp.bind(("127.0.0.1", 0))
            udp.sendto(b"x", udp.getsockname())
            assert sock.recv_batch(batch, timeout=5) == 1 and bytes(batch.payload(0)) == b"x"


def test_a_receiver_refuses_a_stream_socket_called_a_datagram_one(backend):
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", 0))
        sock = fastnet.socket(
            stdsocket.AF_INET, stdsocket.SOCK_DGRAM, fileno=os.dup(tcp.fileno()), backend=backend
        )
        with pytest.raises(ValueError, match="SOCK_DGRAM socket, not SOCK_STREAM"):
            fastnet.Receiver._from_socket(sock)
        assert sock.fileno() == -1  # refused sockets are closed


def test_the_default_socket_is_refused_by_datagram_batches(backend):
    with fastnet.socket(backend=backend) as sock:
        with pytest.raises(io.UnsupportedOperation, match="SOCK_DGRAM"):
            sock.recv_batch(fastnet.Batch(4, 64), timeout=0)


def _error(make):
    try:
        make()
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return type(exc), getattr(exc, "errno", None)
    return None


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((stdsocket.AF_INET, 12345), {}),  # no such type: EINVAL
        ((12345, stdsocket.SOCK_STREAM), {}),  # no such family: EAFNOSUPPORT
        ((stdsocket.AF_INET, stdsocket.SOCK_DGRAM, 99), {}),  # no such protocol
        (("x",), {}),  # TypeError
        ((), {"fileno": -1}),  # ValueError
        ((), {"fileno": "3"}),  # TypeError
    ],
)
def test_errors_are_the_standard_librarys(backend, args, kwargs):
    expected = _error(lambda: stdsocket.socket(*args, **kwargs))
    assert expected is not None
    assert _error(lambda: fastnet.socket(*args, **kwargs, backend=backend)) == expected


def test_a_fileno_that_is_no_socket_fails_as_in_the_standard_library(backend):
    read_end, write_end = os.pipe()
    try:
        expected = _error(lambda: stdsocket.socket(fileno=read_end))
        assert expected == (OSError, errno.ENOTSOCK)
        assert _error(lambda: fastnet.socket(fileno=read_end, backend=backend)) == expected
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fastnet.socket(backend="rust"),
        lambda: fastnet.socket(backend=3),
        lambda: fastnet.socketpair(backend="rust"),
        lambda: fastnet.fromfd(0, stdsocket.AF_INET, stdsocket.SOCK_DGRAM, backend="rust"),
        lambda: fastnet.create_connection(("127.0.0.1", 9), backend="rust"),
        lambda: fastnet.create_server(("127.0.0.1", 0), backend="rust"),
    ],
)
def test_a_bad_backend_is_refused_before_any_socket_is_made(make):
    before = open_fds()
    with pytest.raises((ValueError, TypeError), match="backend"):
        make()
    assert open_fds() == before


def test_accept_returns_a_fastnet_socket_on_the_same_backend(backend):
    with (
        fastnet.create_server(("127.0.0.1", 0), backend=backend) as server,
        stdsocket.create_connection(server.getsockname(), timeout=5),
    ):
        conn, _ = server.accept()
        with conn:
            assert isinstance(conn, fastnet.socket) and conn.backend == backend
            assert kind(conn) == kind(server)


@pytest.mark.parametrize(
    "type_,error",
    [
        (stdsocket.SOCK_DGRAM, errno.EOPNOTSUPP),  # not a connection-based type
        (stdsocket.SOCK_STREAM, errno.EINVAL),  # not listening
    ],
)
def test_accept_on_a_socket_that_cannot_accept_fails_at_once_as_in_the_standard_library(
    backend, type_, error
):
    with (
        stdsocket.socket(stdsocket.AF_INET, type_) as standard,
        fastnet.socket(stdsocket.AF_INET, type_, backend=backend) as sock,
    ):
        with pytest.raises(OSError) as expected:
            standard.accept()
        with pytest.raises(OSError) as got:
            sock.accept()  # blocking, yet it must not wait
        assert got.value.errno == expected.value.errno == error


def test_dup_keeps_backend_kind_and_timeout(backend):
    with fastnet.socket(fastnet.AF_INET6, fastnet.SOCK_DGRAM, backend=backend) as sock:
        sock.settimeout(2.5)
        with sock.dup() as copy:
            assert isinstance(copy, fastnet.socket) and copy.backend == backend
            assert kind(copy) == kind(sock)
            assert copy.gettimeout() == 2.5
            assert copy.fileno() != sock.fileno()


def test_socketpair_makes_connected_fastnet_sockets(backend):
    a, b = fastnet.socketpair(backend=backend)
    with a, b:
        standard = stdsocket.socketpair()
        for s in standard:
            s.close()
        for sock in (a, b):
            assert isinstance(sock, fastnet.socket) and sock.backend == backend
            assert kind(sock) == kind(standard[0]) == (stdsocket.AF_UNIX, stdsocket.SOCK_STREAM, 0)
        a.sendall(b"ping")
        b.settimeout(5)
        assert b.recv(4) == b"ping"


def test_socketpair_errors_are_the_kernels_as_in_the_standard_library(backend):
    # Linux has socketpair(2) for AF_UNIX only.
    before = open_fds()
    with pytest.raises(OSError) as expected:
        stdsocket.socketpair(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    with pytest.raises(OSError) as got:
        fastnet.socketpair(stdsocket.AF_INET, stdsocket.SOCK_DGRAM, backend=backend)
    assert got.value.errno == expected.value.errno
    assert open_fds() == before


def test_fromfd_duplicates_and_leaves_the_fd_to_the_caller(backend):
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as standard:
        standard.bind(("127.0.0.1", 0))
        with fastnet.fromfd(
            standard.fileno(), stdsocket.AF_INET, stdsocket.SOCK_DGRAM, backend=backend
        ) as sock:
            assert isinstance(sock, fastnet.socket) and sock.backend == backend
            assert sock.fileno() != standard.fileno()
            assert sock.getsockname() == standard.getsockname()
            standard.sendto(b"x", standard.getsockname())
            batch = fastnet.Batch(4, 64)
            assert sock.recv_batch(batch, timeout=5) == 1 and bytes(batch.payload(0)) == b"x"
        assert standard.fileno() >= 0
        standard.getsockname()  # still open


def test_create_connection_and_create_server_make_fastnet_sockets(backend):
    with (
        fastnet.create_server(("127.0.0.1", 0), backend=backend) as server,
        fastnet.create_connection(server.getsockname(), timeout=5, backend=backend) as client,
    ):
        assert isinstance(server, fastnet.socket) and server.backend == backend
        assert isinstance(client, fastnet.socket) and client.backend == backend
        assert kind(client) == (stdsocket.AF_INET, stdsocket.SOCK_STREAM, stdsocket.IPPROTO_TCP)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in Python 3.11")
def test_create_connection_all_errors(backend):
    with stdsocket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = unused.getsockname()  # bound, never listening: refused
        with pytest.raises(ExceptionGroup) as group:  # noqa: F821 - Python 3.11+
            fastnet.create_connection(address, all_errors=True, backend=backend)
        assert all(isinstance(exc, ConnectionRefusedError) for exc in group.value.exceptions)
        with pytest.raises(ConnectionRefusedError):
            fastnet.create_connection(address, backend=backend)


def test_patching_socket_socket_makes_every_socket_a_fastnet_one(backend, monkeypatch):
    """``socket.socket = fastnet.socket``, as CPython's tests are run in tests/test_cpython_compat.py."""
    monkeypatch.setattr(stdsocket, "socket", fastnet.socket)
    monkeypatch.setattr(fastnet.engines, "_default", backend)
    receiver = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    sender = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    a, b = stdsocket.socketpair()
    with receiver, sender, a, b:
        for sock in (receiver, sender, a, b):
            assert isinstance(sock, fastnet.socket) and sock.backend == backend
        receiver.bind(("127.0.0.1", 0))
        sender.send_batch(fastnet.Batch.from_payloads([b"one", b"two"]), receiver.getsockname())
        batch = fastnet.Batch(4, 64)
        received = []
        while len(received) < 2:
            n = receiver.recv_batch(batch, timeout=5)
            received += [bytes(batch.payload(i)) for i in range(n)]
        assert received == [b"one", b"two"]
