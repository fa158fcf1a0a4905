"""Private network namespaces for tests that change interfaces and routes.

The host's own interfaces are never touched: each test gets a namespace of
its own (``ip netns add``), with only a loopback device, and deletes it
afterwards. Needs root and the ``ip`` tool; tests skip otherwise.
"""

import contextlib
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def netns_available(*tools):
    """True when this process may create namespaces and ``ip`` (and ``tools``) exist."""
    return (hasattr(os, "geteuid") and os.geteuid() == 0
            and all(shutil.which(tool) for tool in ("ip", *tools)))


class Namespace:
    """A namespace by name: ``run`` a command in it, or ``argv`` to start one."""

    def __init__(self, name):
        self.name = name

    def argv(self, *cmd):
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, *cmd, timeout=60):
        """Run ``cmd`` in the namespace (from the repository root); raise if it fails."""
        done = subprocess.run(self.argv(*cmd), capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
        if done.returncode:
            raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n"
                                 f"{done.stdout}{done.stderr}")
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
        namespace.run("ip", "-6", "route", "add", "local", "ff00::/8", "dev", "lo",
                      "table", "local")
        yield namespace
