"""Run each measurement as a receiver process and a sender process, and collect their reports.

One measurement, step by step (every step bounded in time):

1. start the receiver; it binds 127.0.0.1:0 and answers ``ready PORT INODE``;
2. start the sender towards that port; it sends for ``duration`` seconds,
   prints its report and exits;
3. send SIGUSR1 to the receiver: it keeps receiving until its queue has been
   empty for a moment (bounded), then prints its report;
4. read the receiver socket's ``drops`` counter and queue from /proc/net/udp
   (the kernel's count of datagrams it discarded for that socket, mostly
   for a full receive buffer; and bytes still queued), then close the
   receiver's stdin so it exits.

``run_rounds`` repeats a list of jobs in rounds (every job once, then every
job again), so that a drift of the machine's load reaches every row alike.

With two CPUs or more, the sender and the receiver are pinned to two
different ones (sched_setaffinity(2)), so they never share a core and the
scheduler does not move them mid-run.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Callable, List, Optional, Tuple, cast

from . import RCVBUF
from .reconcile import softnet_drops

__all__ = ["Job", "Outcome", "pick_cpus", "run_job", "run_jobs", "run_rounds"]

#: Exit status of a peer that lacks what it needs (see peer.py, reference.c).
UNSUPPORTED = 3
#: Bound on a peer's start-up (interpreter, imports, socket) before it must answer.
STARTUP_S = 30.0
#: Bound on the receiver's report after SIGUSR1 (its drain is bounded by 3 s).
REPORT_S = 10.0


@dataclass(frozen=True)
class Job:
    """One row: ``backend`` names the row, ``sender`` and ``receiver`` what runs.

    ``rate`` > 0 paces the sender to that many datagrams/s (--find-rate);
    ``connect``: the sender connects its socket and sends without an address.
    """

    backend: str
    sender: str
    receiver: str
    size: int
    rate: float = 0.0
    connect: bool = False


@dataclass
class Outcome:
    job: Job
    status: str = "ok"  # "ok", "skipped" or "failed"
    note: str = ""
    sender: dict = field(default_factory=dict)
    receiver: dict = field(default_factory=dict)
    kernel_drops: Optional[int] = None
    #: Bytes still in the receiver socket's queue after its report.
    queued_bytes: Optional[int] = None
    #: Rise of the machine-wide loopback backlog drop counter over the job.
    backlog_drops: Optional[int] = None


class PeerError(Exception):
    """A peer failed; ``status`` says whether as unsupported ("skipped") or not."""

    def __init__(self, message: str, status: str = "failed"):
        super().__init__(message)
        self.status = status


#: What a run's peer processes can fail with; ``failed_outcome`` says each in the row's note.
PEER_FAILURES = (PeerError, subprocess.TimeoutExpired, OSError)


def failed_outcome(outcome, exc: BaseException, late: str = "peer", process: str = "a peer") -> None:
    """Mark ``outcome`` as ended by ``exc`` (one of PEER_FAILURES); ``late``/``process`` name the process."""
    if isinstance(exc, PeerError):
        outcome.status, outcome.note = exc.status, str(exc)
    elif isinstance(exc, subprocess.TimeoutExpired):
        outcome.status, outcome.note = "failed", f"{late} did not exit within {exc.timeout} s"
    else:
        outcome.status, outcome.note = "failed", f"cannot run {process}: {exc}"


def pick_cpus(pin: bool) -> Optional[Tuple[int, int]]:
    """(sender CPU, receiver CPU), or None when not pinning or fewer than 2 CPUs."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def peer_directory() -> str:
    """The working directory for peer processes: the one holding this fastnet.

    Peers start as ``python -m fastnet...``, and ``-m`` puts the working
    directory first on sys.path: run from a source checkout, a peer would
    import the checkout's fastnet (without the extension of a non-editable
    install) instead of the one this process runs.
    """
    import fastnet

    return os.path.dirname(os.path.dirname(os.path.abspath(fastnet.__file__)))


def peer_environment() -> dict:
    """The environment for peer processes: this one, with numpy's BLAS on one thread.

    numpy starts OpenBLAS's thread pool on import, and its threads spin
    while they wait: perf showed blas_thread_server at about 6% of a 2-CPU
    machine during a run, CPU taken from the Python peers only (the C
    reference does not load numpy). fastnet never calls BLAS.
    """
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    return env


class _Peer:
    """A child process with a line reader on its stdout and stderr in a file."""

    def __init__(self, role: str, argv: List[str], cpu: Optional[int], stdin=None):
        self.role = role
        self.stderr = tempfile.TemporaryFile()
        self._buffer = b""
        self.proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            close_fds=True,
            env=peer_environment(),
            cwd=peer_directory(),
        )
        # stdout=PIPE: Popen always makes the pipe (typeshed types it Optional).
        self._stdout = cast(IO[bytes], self.proc.stdout)
        if cpu is not None:
            try:
                os.sched_setaffinity(self.proc.pid, {cpu})
            except OSError:  # exited already: its report will say why
                pass

    def read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        fd = self._stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(f"{self.role} did not answer within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait(timeout=5)
                raise self.failure()
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def read_report(self, timeout: float) -> dict:
        line = self.read_line(timeout)
        try:
            report = json.loads(line)
        except ValueError:
            raise PeerError(f"{self.role} printed {line[:80]!r} instead of its report") from None
        if not isinstance(report, dict):
            raise PeerError(f"{self.role} printed {line[:80]!r} instead of its report")
        return report

    def last_error_line(self) -> str:
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line]
        return lines[-1] if lines else ""

    def failure(self) -> PeerError:
        code = self.proc.returncode
        detail = self.last_error_line() or f"exit status {code}"
        if code == UNSUPPORTED:
            return PeerError(f"{self.role}: {detail}", status="skipped")
        return PeerError(f"{self.role} failed (exit status {code}): {detail}")

    def stop(self) -> None:
        """Make sure the process is gone; kill it if it has not exited."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stdout.close()
        self.stderr.close()


def udp_socket_counts(inode: int) -> Tuple[Optional[int], Optional[int]]:
    """(drops, bytes queued) of the UDP socket with this inode (/proc/net/udp), or Nones."""
    try:
        with open("/proc/net/udp") as table:
            next(table)  # header
            for line in table:
                fields = line.split()
                # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                if len(fields) >= 13 and fields[9] == str(inode):
                    # proc_pid_net(5): tx_queue and rx_queue are the queues "in
                    # terms of kernel memory usage", not payload bytes: only
                    # whether rx_queue is 0 (nothing left unread) is used.
                    queued = int(fields[4].partition(":")[2], 16)
                    return int(fields[-1]), queued
    except (OSError, ValueError, StopIteration):
        return None, None
    return None, None


def udp_drops(inode: int) -> Optional[int]:
    """The kernel's drop counter of the UDP socket with this inode (/proc/net/udp)."""
    return udp_socket_counts(inode)[0]


def run_job(
    job: Job, catalog, duration: float, cpus: Optional[Tuple[int, int]], rcvbuf: int = RCVBUF
) -> Outcome:
    """Measure one row; never raises for a peer's failure (the outcome says it)."""
    outcome = Outcome(job)
    for role, name in (("sender", job.sender), ("receiver", job.receiver)):
        reason = catalog.unavailable(name)
        if reason is not None:
            outcome.status = "skipped"
            outcome.note = reason if name == job.backend else f"{role} {name}: {reason}"
            return outcome
    send_cpu, recv_cpu = cpus if cpus else (None, None)
    max_seconds = int(math.ceil(duration)) + 60
    receiver = sender = None
    finished = False
    try:
        receiver = _Peer(
            "receiver",
            catalog.receiver_argv(job.receiver, job.size, rcvbuf, max_seconds),
            recv_cpu,
            stdin=subprocess.PIPE,
        )
        if catalog.port_from_stdin(job.sender):  # starts while the receiver starts; told the port below
            sender = _Peer(
                "sender",
                catalog.sender_argv(job.sender, job.size, "-", duration, job.rate, job.connect),
                send_cpu,
                stdin=subprocess.PIPE,
            )
        words = receiver.read_line(STARTUP_S).split()
        if len(words) != 3 or words[0] != "ready":
            raise PeerError(f"receiver said {' '.join(words)[:80]!r} instead of 'ready PORT INODE'")
        port, inode = int(words[1]), int(words[2])
        backlog_before = softnet_drops()
        if sender is not None:
            sender_stdin = cast(IO[bytes], sender.proc.stdin)
            try:
                sender_stdin.write(f"{port}\n".encode())
                sender_stdin.close()
            except BrokenPipeError:
                pass  # it has exited already: reading its report says why
        else:
            sender = _Peer(
                "sender",
                catalog.sender_argv(job.sender, job.size, port, duration, job.rate, job.connect),
                send_cpu,
                stdin=subprocess.DEVNULL,
            )
        outcome.sender = sender.read_report(STARTUP_S + duration + 30)
        sender.proc.wait(timeout=10)
        if sender.proc.returncode != 0:
            raise sender.failure()
        receiver.proc.send_signal(signal.SIGUSR1)
        outcome.receiver = receiver.read_report(REPORT_S)
        outcome.kernel_drops, outcome.queued_bytes = udp_socket_counts(inode)
        backlog_after = softnet_drops()
        if backlog_before is not None and backlog_after is not None:
            outcome.backlog_drops = backlog_after - backlog_before
        notes = []
        if outcome.receiver.get("timed_out"):
            raise PeerError(f"receiver gave up after {max_seconds} s")
        if outcome.receiver.get("drain_timed_out"):
            notes.append("receiver still draining after 3 s; counts stop there")
        granted = outcome.receiver.get("rcvbuf")
        if isinstance(granted, int) and granted < 2 * rcvbuf:
            notes.append(f"receive buffer capped at {granted // 2} bytes (net.core.rmem_max)")
        outcome.note = "; ".join(notes)
        finished = True
    except PEER_FAILURES as exc:
        failed_outcome(outcome, exc)
    finally:
        for peer in (sender, receiver):
            if peer is not None:
                if not finished and peer.proc.poll() is None:
                    peer.proc.kill()  # a failure or Ctrl-C: do not wait for it
                peer.stop()
    return outcome


def run_jobs(
    jobs: List[Job],
    catalog,
    duration: float,
    cpus: Optional[Tuple[int, int]],
    progress: Optional[Callable[[int, Job], None]] = None,
) -> List[Outcome]:
    """Measure every job in order; ``progress(index, job)`` is called before each."""
    outcomes = []
    for index, job in enumerate(jobs):
        if progress is not None:
            progress(index, job)
        outcomes.append(run_job(job, catalog, duration, cpus))
    return outcomes


def run_rounds(
    jobs: List[Job],
    catalog,
    duration: float,
    cpus: Optional[Tuple[int, int]],
    repeats: int,
    progress: Optional[Callable[[int, Job], None]] = None,
    measure: Optional[Callable[[Job], Outcome]] = None,
) -> List[List[Outcome]]:
    """Every job ``repeats`` times, in rounds; ``result[i]`` lists job i's outcomes, round by round.

    A job skipped in the first round (its backend cannot run here) is not
    tried again. ``progress(step, job)`` counts steps over all rounds;
    ``measure`` replaces run_job (the TCP rows).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be 1 or more, got {repeats}")
    if measure is None:

        def measure(job: Job) -> Outcome:
            return run_job(job, catalog, duration, cpus)

    results: List[List[Outcome]] = [[] for _ in jobs]
    step = 0
    for round_index in range(repeats):
        for index, job in enumerate(jobs):
            if round_index and results[index][0].status == "skipped":
                results[index].append(results[index][0])
                continue
            if progress is not None:
                progress(step, job)
            step += 1
            results[index].append(measure(job))
    return results
