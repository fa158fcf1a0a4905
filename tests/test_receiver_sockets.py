"""Receiver on a multicast group (in a private network namespace), and on a socket
bound elsewhere."""

import socket as stdsocket
import sys
import textwrap

import pytest
from helpers import numbers_in, send_numbered
from netns import multicast_netns, needs_netns

import fastnet
from fastnet.receive.fanout import bind_reuse_port
from fastnet.receive.receiver import Receiver


@pytest.mark.parametrize(
    "address,source,message",
    [
        (("127.0.0.1", 0), "127.0.0.1", "multicast group only"),
        (0, "10.0.0.1", "multicast group only"),
        (("239.1.2.3", 0), "not-an-address", "not an IP address"),
        (("239.1.2.3", 0), "239.9.9.9", "unicast"),
        (("239.1.2.3", 0), "::1", "unicast IPv4"),
    ],
)
def test_bad_sources_are_refused_before_any_socket(backend, address, source, message):
    with pytest.raises(ValueError, match=message):
        fastnet.Receiver(address, source=source, backend=backend)


def test_source_must_be_a_string(backend):
    with pytest.raises(TypeError, match="source"):
        fastnet.Receiver(0, source=b"127.0.0.1", backend=backend)


RECEIVER_CHILD = textwrap.dedent("""
    import sys, fastnet
    backend, group, source, other = sys.argv[1:5]

    def outcome(rx, expected=1):
        payloads, source = [], None
        try:
            while len(payloads) < expected:     # they may come in separate batches
                batch = rx.get(timeout=0.5)
                payloads += [bytes(p).decode() for p, _ in batch]
                source = batch.address(0)[0]
        except TimeoutError:
            pass
        return ",".join(payloads) + "@" + source if payloads else "nothing"

    results = []
    with fastnet.Receiver((group, 0), interface="lo", backend=backend, batch_size=8,
                          ring_size=2) as rx:
        tx = fastnet.Sender((group, rx.address[1]), interface="lo", backend=backend)
        tx.send(b"a"); tx.send(b"b"); results.append(outcome(rx, 2))
    # Closing left the group: a new socket on the port, bound but not a
    # member, gets nothing.
    plain = fastnet.socket(rx.family, fastnet.SOCK_DGRAM, backend=backend)
    plain.bind((group, rx.address[1]))
    tx.send(b"late")
    plain.settimeout(0.3)
    try:
        plain.recvfrom(64); results.append("member")
    except TimeoutError:
        results.append("left")
    for wanted in (source, other):
        with fastnet.Receiver((group, 0), interface="lo", source=wanted, backend=backend,
                              batch_size=8, ring_size=2) as ssm:
            assert ssm.source == wanted
            fastnet.Sender((group, ssm.address[1]), interface="lo",
                           backend=backend).send(b"ssm")
            results.append(outcome(ssm))
    print(" ".join(results))
""")


@needs_netns()
@pytest.mark.parametrize(
    "group,local,other", [("239.1.2.3", "127.0.0.1", "127.0.0.2"), ("ff1e::1234", "::1", "::2")]
)
def test_receiver_joins_the_group_and_filters_by_source(backend, group, local, other):
    with multicast_netns(f"rx-mcast-{backend}") as namespace:
        out = namespace.run(sys.executable, "-c", RECEIVER_CHILD, backend, group, local, other).stdout.split()
    assert out == [f"a,b@{local}", "left", f"ssm@{local}", "nothing"]


# -- a Receiver on a socket bound elsewhere (as fan-out workers get theirs) --------


def test_a_receiver_on_a_bound_reuse_port_socket(backend, family_host):
    family, host = family_host
    (standard,) = bind_reuse_port((host, 0), 1)
    sock = fastnet.socket(family, fastnet.SOCK_DGRAM, fileno=standard.detach(), backend=backend)
    address = sock.getsockname()
    with Receiver._from_socket(
        sock, batch_size=16, ring_size=4, timestamps=True, seq=fastnet.SeqField()
    ) as rx:
        assert rx.address == address and rx.backend == backend and rx.family == family
        with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as tx:
            send_numbered(tx, address, 0, 10)
        batch = rx.get(timeout=5)
        numbers = numbers_in(batch)
        assert (batch.timestamps[: batch.count] > 0).all()
        while len(numbers) < 10:
            numbers.extend(numbers_in(rx.get(timeout=5)))
    assert numbers == list(range(10))
    assert rx.stats.packets == 10 and rx.stats.seq_lost == 0
    assert sock.fileno() == -1  # the Receiver owned it and closed it


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda backend: stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM), TypeError),
        (
            lambda backend: fastnet.socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM, backend=backend),
            ValueError,
        ),
        (
            lambda backend: fastnet.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM, backend=backend),
            ValueError,
        ),  # unbound
    ],
)
def test_unusable_sockets_are_refused_and_closed(backend, make, error):
    sock = make(backend)
    with pytest.raises(error):
        Receiver._from_socket(sock, batch_size=1, ring_size=1)
    assert sock.fileno() == -1


def test_bad_options_close_the_socket(backend):
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    sock.bind(("127.0.0.1", 0))
    with pytest.raises(ValueError, match="on_full"):
        Receiver._from_socket(sock, on_full="wait")
    assert sock.fileno() == -1


def test_receiver_with_gro_has_one_row_per_datagram(backend):
    if not (fastnet.features()["gso"] and fastnet.features()["gro"]):
        pytest.skip("kernel without UDP GSO/GRO")
    from fastnet import constants as C

    with fastnet.Receiver(
        0, gro=True, slot_size=512, backend=backend, rcvbuf=4 << 20, seq=fastnet.SeqField()
    ) as rx:
        assert rx._sock.getsockopt(C.SOL_UDP, C.UDP_GRO) == 1
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
            payloads = [i.to_bytes(8, "big") + bytes(504) for i in range(640)]
            batch = fastnet.Batch.from_payloads(payloads)
            assert sender.send_batch(batch, rx.address, gso=True) == 640
        got = []
        while len(got) < 640:
            got += [bytes(p) for p, _ in rx.get(timeout=5)]
        assert got == payloads
        stats = rx.stats
        assert stats.packets == 640 and stats.seq_lost == 0 and stats.kernel_drops == 0
