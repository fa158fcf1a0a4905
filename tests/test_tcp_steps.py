"""The TCP socket steps behave as the standard library's, and return fastnet sockets."""

import socket as stdsocket
import threading

import pytest
from helpers import HAS_IPV6, in_thread

import fastnet


def _exchange(client, server_side):
    """Both directions with the standard methods."""
    assert client.send(b"ping") == 4
    assert server_side.recv(100) == b"ping"
    server_side.sendall(b"pong" * 1000)
    got = bytearray()
    buf = bytearray(1024)
    while len(got) < 4000:
        n = client.recv_into(buf)
        assert n > 0
        got += buf[:n]
    assert bytes(got) == b"pong" * 1000
    client.shutdown(stdsocket.SHUT_WR)
    assert server_side.recv(100) == b""  # EOF after the peer's shutdown


def test_create_server_and_create_connection(backend, family_host):
    family, host = family_host
    with fastnet.create_server((host, 0), family=family, backend=backend) as server:
        assert isinstance(server, fastnet.socket) and server.backend == backend
        assert server.type == stdsocket.SOCK_STREAM and server.family == family
        assert server.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR) == 1
        with fastnet.create_connection(server.getsockname()[:2], timeout=5, backend=backend) as client:
            assert isinstance(client, fastnet.socket) and client.backend == backend
            assert client.gettimeout() == 5
            server.settimeout(5)
            server_side, address = server.accept()
            with server_side:
                assert isinstance(server_side, fastnet.socket)
                assert server_side.backend == backend
                assert address == client.getsockname()
                assert server_side.getpeername() == client.getsockname()
                _exchange(client, server_side)


def test_manual_steps_bind_listen_accept_connect(backend, family_host):
    family, host = family_host
    with (
        fastnet.socket(family, fastnet.SOCK_STREAM, backend=backend) as listener,
        fastnet.socket(family, fastnet.SOCK_STREAM, backend=backend) as client,
    ):
        listener.bind((host, 0))
        listener.listen(4)
        client.settimeout(5)
        client.connect(listener.getsockname())
        listener.settimeout(5)
        server_side, address = listener.accept()
        with server_side:
            assert type(server_side) is fastnet.socket
            assert server_side.backend == backend
            assert address == client.getsockname()
            _exchange(client, server_side)


def test_accept_follows_the_standard_timeout_rule(backend):
    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as server:
        server.settimeout(5)
        with fastnet.create_connection(server.getsockname(), backend=backend):
            conn, _ = server.accept()
            with conn:
                # as socket.accept: no default timeout, so the new one blocks
                assert conn.gettimeout() is None


def test_accept_inherits_framing(backend):
    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as server:
        server.set_framing(prefix_size=2, byteorder="little")
        with fastnet.create_connection(server.getsockname(), backend=backend):
            conn, _ = server.accept()
            with conn:
                assert conn.framing == fastnet.Framing(2, "little", 16 * 2**20, "error")


def test_accept_timeout_and_non_blocking(backend):
    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as server:
        server.settimeout(0.05)
        with pytest.raises(TimeoutError):
            server.accept()
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()


def test_close_from_another_thread_ends_blocked_accept(backend):
    server = fastnet.create_server(("127.0.0.1", 0), backend=backend)
    closer = threading.Timer(0.2, server.close)
    closer.start()
    accepting = in_thread(server.accept)
    with pytest.raises(OSError) as info:
        accepting.result()  # fails if close() did not end the accept
    closer.join()
    assert info.value.errno == 9
    assert server.fileno() == -1


def test_connection_refused(backend):
    # A bound port that does not listen answers a SYN with a reset.
    with stdsocket.socket() as idle:
        idle.bind(("127.0.0.1", 0))
        with pytest.raises(ConnectionRefusedError):
            fastnet.create_connection(idle.getsockname(), timeout=5, backend=backend)


def test_create_connection_binds_source_address(backend):
    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as server:
        with stdsocket.socket() as probe:  # a free port to bind the client to
            probe.bind(("127.0.0.1", 0))
            source = probe.getsockname()
        with fastnet.create_connection(server.getsockname(), 5, source, backend=backend) as c:
            assert c.getsockname() == source


def test_create_server_options(backend):
    with fastnet.create_server(("127.0.0.1", 0), reuse_port=True, backlog=3, backend=backend) as server:
        assert server.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEPORT) == 1
    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as taken:
        with pytest.raises(OSError, match="while attempting to bind on address"):
            fastnet.create_server(taken.getsockname(), backend=backend)
    with pytest.raises(ValueError, match="requires AF_INET6"):
        fastnet.create_server(("127.0.0.1", 0), dualstack_ipv6=True, backend=backend)


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
def test_create_server_ipv6_only_unless_dualstack(backend):
    with fastnet.create_server(("::1", 0), family=fastnet.AF_INET6, backend=backend) as server:
        assert server.getsockopt(stdsocket.IPPROTO_IPV6, stdsocket.IPV6_V6ONLY) == 1
    if stdsocket.has_dualstack_ipv6():
        with fastnet.create_server(
            ("::", 0), family=fastnet.AF_INET6, dualstack_ipv6=True, backend=backend
        ) as server:
            assert server.getsockopt(stdsocket.IPPROTO_IPV6, stdsocket.IPV6_V6ONLY) == 0


def test_unknown_backend_is_refused_by_the_helpers():
    with pytest.raises(ValueError, match="unknown backend"):
        fastnet.create_server(("127.0.0.1", 0), backend="rust")
    with pytest.raises(ValueError, match="unknown backend"):
        fastnet.create_connection(("127.0.0.1", 9), backend="rust")
