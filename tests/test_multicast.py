"""Multicast: argument checks on the host; joins, leaves and source filters in a
private network namespace (the host's loopback is never changed)."""

import errno
import socket as stdsocket
import sys
import textwrap

import pytest
from netns import multicast_netns, needs_netns

import fastnet


@pytest.mark.parametrize(
    "group,error",
    [
        ("127.0.0.1", ValueError),  # unicast
        ("10.1.2.3", ValueError),
        ("::1", ValueError),  # IPv6 on an IPv4 socket
        ("ff02::1", ValueError),
        ("not-an-address", ValueError),
        (b"239.1.1.1", TypeError),
        (None, TypeError),
    ],
)
def test_bad_groups_are_refused_before_any_system_call(backend, group, error):
    with fastnet.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM, backend=backend) as sock:
        with pytest.raises(error):
            fastnet.join_group(sock, group)
        with pytest.raises(error):
            fastnet.leave_group(sock, group)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(interface="no-such-if0"), ValueError, "no network interface"),
        (dict(interface="::1"), ValueError, "IPv6"),
        (dict(interface=-1), ValueError, "0 or more"),
        (dict(interface=True), TypeError, "bool"),
        (dict(interface=1.5), TypeError, "float"),
        (dict(source="239.2.2.2"), ValueError, "unicast"),
        (dict(source="::1"), ValueError, "IPv6"),
        (dict(source="x"), ValueError, "not an IP address"),
    ],
)
def test_bad_interfaces_and_sources_are_refused(backend, kwargs, error, message):
    with fastnet.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM, backend=backend) as sock:
        with pytest.raises(error, match=message):
            fastnet.join_group(sock, "239.1.1.1", **kwargs)


def test_leaving_a_group_never_joined_is_the_kernels_error(backend):
    with fastnet.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM, backend=backend) as sock:
        with pytest.raises(OSError) as info:
            fastnet.leave_group(sock, "239.1.1.1")
    assert info.value.errno == errno.EADDRNOTAVAIL


@pytest.mark.parametrize(
    "family,level,ttl_option,loop_option",
    [
        (stdsocket.AF_INET, stdsocket.IPPROTO_IP, stdsocket.IP_MULTICAST_TTL, stdsocket.IP_MULTICAST_LOOP),
        (
            stdsocket.AF_INET6,
            stdsocket.IPPROTO_IPV6,
            stdsocket.IPV6_MULTICAST_HOPS,
            stdsocket.IPV6_MULTICAST_LOOP,
        ),
    ],
)
def test_prepare_multicast_sender_sets_the_options(backend, family, level, ttl_option, loop_option):
    with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sock:
        fastnet.prepare_multicast_sender(sock, ttl=5, loop=False)
        assert sock.getsockopt(level, ttl_option) == 5
        assert sock.getsockopt(level, loop_option) == 0
        with pytest.raises(ValueError):
            fastnet.prepare_multicast_sender(sock, ttl=300)


MULTICAST_CHILD = textwrap.dedent("""
    import sys, socket, fastnet
    backend, version = sys.argv[1], sys.argv[2]
    if version == "4":
        family, group, local, other = socket.AF_INET, "239.1.2.3", "127.0.0.1", "127.0.0.2"
    else:
        family, group, local, other = socket.AF_INET6, "ff1e::1234", "::1", "::2"

    def receiver():
        sock = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend)
        sock.bind((group, 0))   # bound to the group: only that group's datagrams
        return sock

    def sender(port):
        tx = fastnet.Sender((group, port), backend=backend, interface="lo")
        # On lo the kernel picks no source for a link-scope route: name one.
        tx.socket.bind((local, 0))
        return tx

    def outcome(sock):
        batch = fastnet.Batch(8, 32, family=family)
        try:
            n = sock.recv_batch(batch, timeout=0.5)
        except TimeoutError:
            return "nothing"
        return ",".join(bytes(p).decode() for p, _ in batch) + "@" + batch.address(0)[0]

    results = []
    rx = receiver(); port = rx.getsockname()[1]
    tx = sender(port)
    tx.send(b"before-join"); results.append(outcome(rx))
    fastnet.join_group(rx, group, interface="lo")
    tx.send(b"a"); tx.send(b"b"); results.append(outcome(rx))
    fastnet.leave_group(rx, group, interface="lo")
    tx.send(b"after-leave"); results.append(outcome(rx))
    fastnet.join_group(rx, group, interface=local)     # an interface address works too
    tx.send(b"by-address"); results.append(outcome(rx))
    rx.close()
    for source in (local, other):
        ssm = receiver()
        fastnet.join_group(ssm, group, interface="lo", source=source)
        sender(ssm.getsockname()[1]).send(b"ssm"); results.append(outcome(ssm))
        ssm.close()
    print(" ".join(results))
""")


@needs_netns()
@pytest.mark.parametrize("version", ["4", "6"])
def test_join_leave_and_source_filter_on_loopback(backend, version):
    with multicast_netns(f"mcast-{backend}-{version}") as namespace:
        out = namespace.run(sys.executable, "-c", MULTICAST_CHILD, backend, version).stdout.split()
    local = "127.0.0.1" if version == "4" else "::1"
    assert out == ["nothing", f"a,b@{local}", "nothing", f"by-address@{local}", f"ssm@{local}", "nothing"]
