"""Shared command-line argument parsing."""

import argparse
import socket

import pytest

from fastnet.cli._args import family_of, host_port, positive_float, positive_int


@pytest.mark.parametrize(
    "text,expected",
    [
        ("127.0.0.1:7788", ("127.0.0.1", 7788)),
        (":7788", ("127.0.0.1", 7788)),
        ("7788", ("127.0.0.1", 7788)),
        ("[::1]:9", ("::1", 9)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_host_port_accepts(text, expected):
    assert host_port(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:", "a:b", "::1:9", "[::1]9", "1.2.3.4:70000", "x:-1"])
def test_host_port_rejects_with_one_line(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        host_port(text)
    assert "\n" not in str(info.value)


def test_family_of():
    assert family_of("::1") == socket.AF_INET6
    assert family_of("127.0.0.1") == socket.AF_INET
    assert family_of("localhost") == socket.AF_INET


@pytest.mark.parametrize(
    "parse,bad",
    [
        (positive_int, "0"),
        (positive_int, "1.5"),
        (positive_float, "-1"),
        (positive_float, "nan"),
        (positive_float, "inf"),
    ],
)
def test_positive_numbers_reject(parse, bad):
    with pytest.raises(argparse.ArgumentTypeError):
        parse(bad)
