"""The classic socket steps behave exactly as the standard library's."""

import selectors
import socket as stdsocket

import pytest

import fastnet


def test_hello_reaches_receiver_with_senders_address(backend, family_host):
    family, host = family_host
    with (
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind((host, 0))
        sender.bind((host, 0))
        sender.sendto("Hello".encode("utf-8"), receiver.getsockname())
        receiver.settimeout(2)
        data, address = receiver.recvfrom(1024)
        assert data == b"Hello"
        assert address == sender.getsockname()


def test_is_a_standard_socket(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        assert isinstance(sock, stdsocket.socket)
        assert sock.family == stdsocket.AF_INET
        assert sock.type == stdsocket.SOCK_DGRAM
        assert sock.backend == backend
        assert "fastnet.socket" in repr(sock) and backend in repr(sock)


def test_constants_are_the_standard_ones():
    assert fastnet.AF_INET == stdsocket.AF_INET
    assert fastnet.AF_INET6 == stdsocket.AF_INET6
    assert fastnet.SOCK_DGRAM == stdsocket.SOCK_DGRAM
    assert fastnet.SOCK_STREAM == stdsocket.SOCK_STREAM


def test_connect_send_recv_and_into_variants(backend):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as a,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as b,
    ):
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.connect(b.getsockname())
        b.connect(a.getsockname())
        assert a.getpeername() == b.getsockname()
        a.settimeout(2)
        b.settimeout(2)
        assert a.send(b"one") == 3
        assert b.recv(100) == b"one"
        a.send(b"two")
        buf = bytearray(10)
        assert b.recv_into(buf) == 3 and buf[:3] == b"two"
        a.send(b"three")
        nbytes, address = b.recvfrom_into(buf)
        assert (buf[:nbytes], address) == (b"three", a.getsockname())


def test_timeouts_and_blocking_like_stdlib(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        sock.bind(("127.0.0.1", 0))
        assert sock.gettimeout() is None
        sock.settimeout(0.05)
        assert sock.gettimeout() == 0.05
        with pytest.raises(TimeoutError):
            sock.recvfrom(10)
        sock.setblocking(False)
        assert sock.gettimeout() == 0.0
        with pytest.raises(BlockingIOError):
            sock.recvfrom(10)


def test_options_fileno_and_closed(backend):
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
    assert sock.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR) == 1
    assert sock.fileno() >= 0
    assert not sock.closed
    sock.close()
    assert sock.closed
    assert sock.fileno() == -1
    sock.close()  # closing twice is harmless, as in the standard library


def test_context_manager_closes(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        pass
    assert sock.closed and sock.fileno() == -1


def test_works_with_selectors(backend):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        with selectors.DefaultSelector() as selector:
            selector.register(receiver, selectors.EVENT_READ)
            sender.sendto(b"x", receiver.getsockname())
            events = selector.select(timeout=2)
            assert [key.fileobj for key, _ in events] == [receiver]


def test_dup_keeps_backend(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        with sock.dup() as copy:
            assert isinstance(copy, fastnet.socket)
            assert copy.backend == backend


def test_enable_timestamps_sets_the_option(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        sock.enable_timestamps()
        assert sock.getsockopt(stdsocket.SOL_SOCKET, fastnet.SO_TIMESTAMPNS) == 1
        sock.enable_timestamps(False)
        assert sock.getsockopt(stdsocket.SOL_SOCKET, fastnet.SO_TIMESTAMPNS) == 0
