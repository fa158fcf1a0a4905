"""SO_REUSEPORT fan-out: several processes receive on one address, stats merged.

socket(7), SO_REUSEPORT: "For UDP sockets, the use of this option can
provide better distribution of incoming datagrams to multiple processes (or
threads) as compared to the traditional technique of having multiple
processes compete to receive datagrams on the same socket." The kernel picks
the socket by a hash of the source and destination address and port, so
*one* sender (one source port) lands on one socket: fan-out spreads many
flows, never one flow.

Every socket of the group must be bound before traffic starts, and a bound
socket nobody reads still gets its share (then lost when its buffer fills).
So the parent binds all N sockets itself (port 0 picks one free port for the
group), hands one to each worker process, and closes its own copies; the
workers are started with the "spawn" method (no fork of a threaded parent)
and ignore SIGINT: Ctrl-C reaches the parent, which asks every worker to stop
and waits for its stats.

Each worker runs ``loop(sock, should_stop, *loop_args) -> dict``: receive on
``sock`` (a fastnet.socket) until ``should_stop()`` is true, checking it at
least every few tenths of a second (use a recv_batch timeout), and return its
counters. :func:`merge_stats` adds them up.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import socket as _stdsocket
import time
import traceback

from ..errors import FanOutError

__all__ = ["FanOut", "bind_reuse_port", "merge_stats"]

#: How long workers may take to start (a spawned interpreter imports numpy).
READY_TIMEOUT_S = 60.0
#: How long a worker may take to notice the stop request and report.
STOP_TIMEOUT_S = 10.0


def bind_reuse_port(address, count: int, *, family=None, rcvbuf=None) -> list:
    """``count`` standard sockets with SO_REUSEPORT bound to one ``(host, port)``.

    Port 0 chooses a free port for the first; the rest join it.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"workers must be a whole number of at least 1, got {count!r}")
    host, port = address[0], address[1]
    if family is None:
        family = _stdsocket.getaddrinfo(host, port, 0, _stdsocket.SOCK_DGRAM)[0][0]
    sockets = []
    try:
        for _ in range(count):
            sock = _stdsocket.socket(family, _stdsocket.SOCK_DGRAM)
            sockets.append(sock)
            sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEPORT, 1)
            if rcvbuf is not None:
                sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF, rcvbuf)
            sock.bind((host, port))
            port = sock.getsockname()[1]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _worker(index, sock, backend, loop, loop_args, stop, results):
    # Ctrl-C goes to the whole process group: the parent decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from ..core.socket import socket as fastsocket

    try:
        fsock = fastsocket(sock.family, sock.type, fileno=sock.detach(), backend=backend)
    except BaseException:  # noqa: BLE001 - the parent raises it, with this traceback
        results.put(("error", index, traceback.format_exc()))
        return
    try:
        results.put(("ready", index, None))
        stats = loop(fsock, stop.is_set, *loop_args)
    except BaseException:  # noqa: BLE001 - the parent raises it, with this traceback
        results.put(("error", index, traceback.format_exc()))
    else:
        results.put(("done", index, stats))
    finally:
        fsock.close()


class FanOut:
    """Run ``workers`` receive loops on one address, in processes of their own.

    >>> with FanOut(("127.0.0.1", 0), 2, my_loop) as fan:    # doctest: +SKIP
    ...     print("listening on", fan.address)
    ...     fan.wait(10)          # seconds, or until Ctrl-C
    >>> fan.stats                 # merged; fan.worker_stats per worker
    """

    def __init__(self, address, workers: int, loop, *, loop_args=(), backend=None, rcvbuf=None):
        self._context = multiprocessing.get_context("spawn")
        sockets = bind_reuse_port(address, workers, rcvbuf=rcvbuf)
        self.address = sockets[0].getsockname()
        self._stop = self._context.Event()
        self._results = self._context.Queue()
        self._processes = []
        self.worker_stats: list = [None] * workers
        self.stats: dict | None = None
        try:
            for index, sock in enumerate(sockets):
                process = self._context.Process(
                    target=_worker,
                    name=f"fastnet-worker-{index}",
                    daemon=True,
                    args=(index, sock, backend, loop, tuple(loop_args), self._stop, self._results),
                )
                process.start()
                self._processes.append(process)
        except BaseException:
            self._stop.set()
            self._join(STOP_TIMEOUT_S)
            raise
        finally:
            for sock in sockets:  # the workers hold their own copies now
                sock.close()
        try:
            self._collect("ready", READY_TIMEOUT_S)
        except BaseException:
            self._stop.set()
            self._join(STOP_TIMEOUT_S)
            raise

    def _collect(self, kind, timeout):
        """Wait for one ``kind`` message per worker; raise FanOutError on a failure."""
        pending = set(range(len(self._processes)))
        deadline = time.monotonic() + timeout
        errors = []
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FanOutError(f"workers {sorted(pending)} did not report {kind!r} within {timeout:g} s")
            try:
                message, index, payload = self._results.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                dead = [i for i in pending if not self._processes[i].is_alive()]
                if dead and self._results.empty():
                    raise FanOutError(f"workers {dead} exited without reporting {kind!r}") from None
                continue
            if message == "error":
                errors.append(f"worker {index}:\n{payload}")
                pending.discard(index)
            elif message == kind:
                pending.discard(index)
                if kind == "done":
                    self.worker_stats[index] = payload
        if errors:
            raise FanOutError("\n".join(errors))

    @property
    def running(self) -> bool:
        """True while every worker process is alive."""
        return all(process.is_alive() for process in self._processes)

    def wait(self, timeout=None) -> None:
        """Block for ``timeout`` seconds (None: until a worker ends, or Ctrl-C)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            if any(not process.is_alive() for process in self._processes):
                return
            step = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            time.sleep(step)

    def stop(self) -> dict:
        """Ask every worker to stop, collect and merge their stats (once)."""
        if self.stats is not None:
            return self.stats
        self._stop.set()
        try:
            self._collect("done", STOP_TIMEOUT_S)
        finally:
            self._join(STOP_TIMEOUT_S)
        self.stats = merge_stats([s for s in self.worker_stats if s is not None])
        return self.stats

    def _join(self, timeout):
        deadline = time.monotonic() + timeout
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(1.0)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop()
        except FanOutError:
            if exc_type is None:
                raise


#: How per-worker values combine, by key; anything else numeric is summed.
_MAX_KEYS = {"elapsed", "duration", "last_timestamp", "max_length"}
# rcvbuf, slot_size: the smallest is the one that overflows or cuts first.
_MIN_KEYS = {"first_timestamp", "min_length", "rcvbuf", "slot_size"}


def merge_stats(parts: list) -> dict:
    """One dict from per-worker stats dicts.

    Numbers are summed (counts, bytes, drops, and rates, which add up across
    workers running at the same time), except keys in ``_MAX_KEYS``
    (elapsed time: the longest) and ``_MIN_KEYS``; booleans are or-ed;
    lists are concatenated; dicts are merged the same way; other values are
    kept if all workers agree, else listed. ``workers`` is the count merged.
    """
    merged: dict = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        values = [part[key] for part in parts if key in part]
        first = values[0]
        if isinstance(first, bool):
            merged[key] = any(values)
        elif isinstance(first, (int, float)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            if key in _MAX_KEYS:
                merged[key] = max(values)
            elif key in _MIN_KEYS:
                merged[key] = min(values)
            else:
                merged[key] = sum(values)
        elif isinstance(first, list):
            merged[key] = [item for v in values for item in v]
        elif isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            merged[key] = merge_stats(values)
            merged[key].pop("workers", None)
        else:
            merged[key] = first if all(v == first for v in values) else values
    merged["workers"] = len(parts)
    return merged
