"""Private network namespaces for tests that change interfaces and routes.

The host's own interfaces are never touched: each test gets a namespace of
its own (``ip netns add``), with only a loopback device, and deletes it
afterwards. Needs root and the ``ip`` tool (and ``tc`` for some tests).

Such tests carry ``@needs_netns(...)``. Where namespaces cannot be made they
skip, unless namespaces are expected: FASTNET_EXPECT_NETNS=1 (set by .ci/run),
or CI=true without FASTNET_EXPECT_NETNS=0. Then the run fails at start, and
a namespace test that could not run fails instead of skipping (conftest.py).
"""

import contextlib
import functools
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def netns_expected():
    """True when namespace tests must run here (CI): a skip would hide them."""
    setting = os.environ.get("FASTNET_EXPECT_NETNS")
    if setting is not None:
        return setting == "1"
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@functools.lru_cache(maxsize=None)
def _probe_failure():
    """None if a namespace can be added and deleted here, else what went wrong."""
    name = f"fastnet-probe-{os.getpid()}"
    try:
        made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ip netns add failed: {exc}"
    if made.returncode:
        return f"ip netns add failed: {made.stderr.strip()}"
    gone = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True, timeout=30)
    if gone.returncode:
        return f"ip netns del failed: {gone.stderr.strip()}"
    return None


def netns_unavailable(*tools):
    """Why private namespaces (with ``ip`` and ``tools``) cannot be used here, or None."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return "needs root for a private netns"
    missing = [tool for tool in ("ip", *tools) if not shutil.which(tool)]
    if missing:
        return f"needs {', '.join(missing)} for a private netns"
    return _probe_failure()


def netns_available(*tools):
    """True when this process may create namespaces and ``ip`` (and ``tools``) exist."""
    return netns_unavailable(*tools) is None


def needs_netns(*tools):
    """Mark a test that makes private namespaces and runs ``ip`` and ``tools`` in them."""
    return pytest.mark.netns(*tools)


def skip_without_netns(reason):
    """Skip for ``reason`` (no namespace can be made), or fail where namespaces are expected."""
    if netns_expected():
        pytest.fail(
            f"network namespace test cannot run, but namespaces are expected "
            f"(FASTNET_EXPECT_NETNS / CI): {reason}",
            pytrace=False,
        )
    pytest.skip(reason)


class Namespace:
    """A namespace by name: ``run`` a command in it, or ``argv`` to start one."""

    def __init__(self, name):
        self.name = name

    def argv(self, *cmd):
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, *cmd, timeout=60):
        """Run ``cmd`` in the namespace (from the repository root); raise if it fails."""
        done = subprocess.run(self.argv(*cmd), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if done.returncode:
            raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done


@contextlib.contextmanager
def private_netns(tag):
    """A fresh namespace with its loopback up; deleted on exit."""
    name = f"fastnet-{tag}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        namespace = Namespace(name)
        namespace.run("ip", "link", "set", "lo", "up")
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextlib.contextmanager
def multicast_netns(tag):
    """A private namespace whose loopback carries IPv4 and IPv6 multicast."""
    with private_netns(tag) as namespace:
        namespace.run("ip", "link", "set", "lo", "multicast", "on")  # lo lacks it by default
        # src: without it the kernel finds no source address for this
        # link-scope route and sends from 0.0.0.0.
        namespace.run("ip", "route", "add", "224.0.0.0/4", "dev", "lo", "src", "127.0.0.1")
        # An ordinary IPv6 route via lo becomes a reject route (the kernel's
        # ip6_route_info_create: "We cannot add true routes via loopback");
        # a route of type local is accepted and delivers to the members.
        namespace.run("ip", "-6", "route", "add", "local", "ff00::/8", "dev", "lo", "table", "local")
        yield namespace
