"""``fastnet recv GROUP:PORT --interface IF [--source ADDR]`` with ``fastnet send`` to the group,
in a private network namespace (the host's interfaces are never changed)."""

import json

import pytest
from cli_helpers import bound_address, finish, one_error_line, start_fastnet, start_recv
from netns import multicast_netns, needs_netns

GROUPS = [
    pytest.param("239.1.2.3", "127.0.0.1", "127.0.0.2", id="ipv4"),
    pytest.param("ff1e::1234", "::1", "::2", id="ipv6"),
]


def address(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def receive_from_group(namespace, backend, group, *recv_args, count=3):
    """Start fastnet recv on the group, send ``count`` datagrams with fastnet send; the report."""
    prefix = namespace.argv()
    receiver = start_recv(
        address(group, 0),
        "--interface",
        "lo",
        "--json",
        "--seq",
        "--backend",
        backend,
        *recv_args,
        prefix=prefix,
    )
    host, port = bound_address(receiver)
    assert host == group
    sender = start_fastnet(
        "send",
        address(group, port),
        "--interface",
        "lo",
        "--count",
        str(count),
        "--backend",
        backend,
        prefix=prefix,
    )
    status, _, err = finish(sender)
    assert status == 0, err
    status, out, err = finish(receiver)
    assert status == 0, err
    return json.loads(out)


@needs_netns()
@pytest.mark.parametrize("group,local,other", GROUPS)
def test_recv_joins_the_group(backend, group, local, other):
    with multicast_netns(f"cli-mcast-{backend}") as namespace:
        report = receive_from_group(namespace, backend, group, "--count", "3")
    assert report["packets"] == 3 and report["seq_lost"] == 0
    assert report["address"][:2] == [group, report["address"][1]]


@needs_netns()
@pytest.mark.parametrize("group,local,other", GROUPS)
def test_source_specific_join(backend, group, local, other):
    with multicast_netns(f"cli-ssm-{backend}") as namespace:
        wanted = receive_from_group(namespace, backend, group, "--source", local, "--count", "3")
        unwanted = receive_from_group(namespace, backend, group, "--source", other, "--duration", "1")
    assert wanted["packets"] == 3
    assert unwanted["packets"] == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["127.0.0.1:0", "--source", "127.0.0.1"], "--source applies to a multicast"),
        (["127.0.0.1:0", "--interface", "lo"], "--interface applies to a multicast"),
        (["239.1.2.3:0", "--source", "239.2.2.2"], "unicast"),
        (["239.1.2.3:0", "--interface", "no-such-if0"], "no network interface"),
        (["239.1.2.3:0", "--interface", "lo", "--workers", "2"], "cannot spread multicast"),
    ],
)
def test_bad_multicast_arguments_exit_2(args, message):
    status, out, err = finish(start_recv(*args))
    assert status == 2 and out == ""
    assert message in one_error_line(err)
