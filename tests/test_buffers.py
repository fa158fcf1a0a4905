"""set_buffers: FORCE where permitted, plain otherwise, sizes as the kernel set them."""

import os
import socket as stdsocket
import warnings

import pytest

import fastnet


def _rmem_max():
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())


def test_returns_what_the_kernel_reports(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        rcv, snd = sock.set_buffers(rcvbuf=256 * 1024, sndbuf=128 * 1024)
        assert rcv == sock.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF) == 512 * 1024
        assert snd == sock.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF) == 256 * 1024


def test_none_leaves_a_buffer_alone(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        before = sock.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF)
        _, snd = sock.set_buffers(rcvbuf=64 * 1024)
        assert snd == before


@pytest.mark.skipif(os.geteuid() != 0, reason="FORCE needs CAP_NET_ADMIN")
def test_force_goes_past_rmem_max_when_privileged(backend):
    wanted = _rmem_max() * 2
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error")
        rcv, _ = sock.set_buffers(rcvbuf=wanted)
    assert rcv == 2 * wanted


def test_capped_request_warns_naming_the_sysctl(backend, monkeypatch):
    # Without CAP_NET_ADMIN the FORCE option fails with EPERM: simulate that.
    real = stdsocket.socket.setsockopt

    def no_force(sock, level, option, *args):
        if option in (fastnet.constants.SO_RCVBUFFORCE, fastnet.constants.SO_SNDBUFFORCE):
            raise PermissionError(1, "Operation not permitted")
        return real(sock, level, option, *args)

    monkeypatch.setattr(stdsocket.socket, "setsockopt", no_force)
    wanted = _rmem_max() * 4
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        with pytest.warns(fastnet.BufferSizeWarning, match="net.core.rmem_max"):
            rcv, _ = sock.set_buffers(rcvbuf=wanted)
    assert rcv == 2 * _rmem_max()


@pytest.mark.parametrize(
    "value,error",
    [(0, ValueError), (-5, ValueError), (2**40, ValueError), (1.5, TypeError), ("big", TypeError)],
)
def test_bad_sizes_are_refused(backend, value, error):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        with pytest.raises(error):
            sock.set_buffers(rcvbuf=value)


def test_closed_socket(backend):
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    sock.close()
    with pytest.raises(OSError):
        sock.set_buffers(rcvbuf=4096)
