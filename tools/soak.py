"""Soak under faults: a Sender and a Receiver on loopback for a bounded time, with faults.

    python tools/soak.py                         # 60 s, the highest loss-free rate found first
    python tools/soak.py --seconds 600 --backend python --pps 50000 --json

A sender process sends numbered datagrams (fastnet.Sender, paced) to a
fastnet.Receiver in this process, whose consumer (the main thread) checks
every batch. Meanwhile, in turn, again and again:

``shrink-rcvbuf``   the receiving socket's buffer is cut to the kernel's minimum, then restored;
``pause-consumer``  the consumer stops taking batches for a while (the ring fills);
``sigint``          SIGINT arrives while the consumer waits in ``get()``;
``kill-sender``     the sender process is killed (SIGKILL) and a new one started;
``close-socket``    the Receiver's socket is closed from another thread while its
                    capture thread and the consumer are blocked (then a new Receiver
                    binds the same port);
``close-receiver``  ``Receiver.close()`` from another thread while the consumer is blocked.

At the end the consumer stops taking batches, the sender stops, and the
Receiver is closed with its ring and queue full (the queue is ``unread``).

Afterwards every datagram sent must be accounted for, exactly:

    sent == packets + kernel_drops + ring_overruns + unread    (summed over every Receiver)

each batch's datagrams must come in sending order with none twice, nothing may
hang (every blocked call that a fault should end, ends within PROMPT_S), and
the file descriptors, threads and child processes of this process must be as
they were before. Exit status 0 if all of that holds, 1 if not, 130 on Ctrl-C.

How "sent" is known exactly when a sender is killed: the sender writes to a
shared ledger which rows it is about to send and, after the call, which went
out. A kill can fall between the two; the rows in that window were sent if and
only if they arrived, provided nothing was dropped around the kill (the kernel
and ring counters did not move), which the soak checks and reports.
Closing a socket discards whatever its queue holds, uncounted, so the two
close faults pause the sender and let the queue drain first: the fault is the
close of a socket (and a Receiver) in use by blocked threads.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket as stdsocket
import sys
import threading
import time
from multiprocessing import resource_tracker

import numpy as np

import fastnet

FAULTS = ("shrink-rcvbuf", "pause-consumer", "sigint", "kill-sender", "close-socket", "close-receiver")
SIZE = 64  # payload bytes: incarnation (u32), 4 spare, sequence number (u64)
CHUNK = 64  # rows per ledger entry (one Sender.send_batch)
BATCH = 256  # Receiver batch_size
RING = 16  # Receiver ring_size
PROMPT_S = 2.0  # a blocked call a fault should end must end within this (it takes ~0.1 s)
STARTUP_S = 30.0  # a sender process must be sending within this (it imports numpy)
PROBE_RATES = (25_000, 50_000, 100_000, 200_000, 400_000, 800_000)

# Ledger slots (int64), shared with the sender process.
DONE, INTENT, COMMAND, STATE = range(4)
RUN, PAUSE, STOP = 0, 1, 2  # COMMAND
STARTING, SENDING, PAUSED, STOPPED = 0, 1, 2, 3  # STATE


# -- the sender process ------------------------------------------------------------


def sender_main(ledger, address, pps, backend, incarnation):
    """Send numbered datagrams at ``pps`` until told to stop (or killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    batch = fastnet.Batch(CHUNK, SIZE)
    batch.lengths[:] = SIZE
    batch.count = CHUNK
    batch.data[:, :4] = np.frombuffer(int(incarnation).to_bytes(4, "big"), np.uint8)
    steps = np.arange(CHUNK, dtype=np.uint64)
    numbers = np.empty(CHUNK, dtype=">u8")
    with fastnet.Sender(address, pps=pps, backend=backend) as sender:
        ledger[STATE] = SENDING
        while True:
            command = ledger[COMMAND]
            if command == STOP:
                break
            if command == PAUSE:
                ledger[STATE] = PAUSED
                time.sleep(0.002)
                continue
            ledger[STATE] = SENDING
            first = ledger[DONE]
            np.add(steps, first, out=numbers, casting="unsafe")
            batch.data[:, 8:16] = numbers[:, None].view(np.uint8)
            ledger[INTENT] = first + CHUNK
            try:
                sent = sender.send_batch(batch)
            except OSError as exc:
                sent = getattr(exc, "sent", 0)
            ledger[DONE] = first + sent
    ledger[STATE] = STOPPED


class SenderProcess:
    """One sender incarnation and what it is known to have sent."""

    def __init__(self, context, ledger, address, pps, backend, incarnation):
        self.ledger = ledger
        self.incarnation = incarnation
        for slot in (DONE, INTENT, COMMAND, STATE):
            ledger[slot] = 0
        self.process = context.Process(
            target=sender_main,
            name=f"soak-sender-{incarnation}",
            args=(ledger, address, pps, backend, incarnation),
        )
        self.process.start()
        self.killed = False
        self.in_doubt = 0
        deadline = time.monotonic() + STARTUP_S
        while ledger[STATE] == STARTING:
            if not self.process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sender process did not start")
            time.sleep(0.01)

    def pause(self):
        self.ledger[COMMAND] = PAUSE
        self._wait_state(PAUSED)

    def resume(self):
        self.ledger[COMMAND] = RUN

    def stop(self):
        self.ledger[COMMAND] = STOP
        self.process.join(STARTUP_S)
        if self.process.is_alive():
            raise RuntimeError("the sender process did not stop")
        self.process.close()
        return int(self.ledger[DONE])

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(STARTUP_S)
        self.process.close()
        self.killed = True
        done, intent = int(self.ledger[DONE]), int(self.ledger[INTENT])
        self.in_doubt = max(0, intent - done)
        return done

    def _wait_state(self, state):
        deadline = time.monotonic() + PROMPT_S * 5
        while self.ledger[STATE] != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sender process did not reach state {state}")
            time.sleep(0.001)


# -- the consumer's checks ---------------------------------------------------------


class Tally:
    """What the consumer saw: counts per sender incarnation, order checked."""

    def __init__(self):
        self.seen = 0
        self.per_incarnation = {}
        self.last_key = -1
        self.out_of_order = 0
        self.last_batch = None  # the Batch object counted last

    def take(self, batch):
        self.last_batch = batch
        n = batch.count
        if not n:
            return
        heads = batch.data[:n, :16]
        incarnations = heads[:, :4].copy().view(">u4")[:, 0].astype(np.int64)
        numbers = heads[:, 8:16].copy().view(">u8")[:, 0].astype(np.int64)
        keys = (incarnations << 40) | numbers
        # One socket, one sender at a time: sending order is arrival order.
        self.out_of_order += int(np.count_nonzero(np.diff(keys) <= 0)) + int(keys[0] <= self.last_key)
        self.last_key = int(keys[-1])
        for incarnation in np.unique(incarnations).tolist():
            mine = numbers[incarnations == incarnation]
            count, top = self.per_incarnation.get(incarnation, (0, -1))
            self.per_incarnation[incarnation] = (count + len(mine), max(top, int(mine.max())))
        self.seen += n


# -- the soak --------------------------------------------------------------------------


class Interrupts:
    """SIGINT as Ctrl-C, except that an injected one never lands in the soak's own code.

    An injected SIGINT must end a ``get()`` blocked in the Receiver; raised
    anywhere, it could also land between ``get()`` returning a batch and the
    consumer counting it, which would lose the batch to the soak itself, not
    to fastnet. So while one is expected, it is raised at once only if this
    file is not what runs, else at the next ``check()`` (just before the next
    ``get()``). A SIGINT nobody injected (the user's Ctrl-C) is raised at once.
    """

    def __init__(self):
        self.expected = False
        self.pending = False

    def handler(self, signum, frame):
        if self.expected and frame is not None and frame.f_code.co_filename == __file__:
            self.pending = True
            return
        raise KeyboardInterrupt

    def expect(self):
        self.pending = False
        self.expected = True

    def check(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def done(self):
        self.expected = False
        self.pending = False


def _fds():
    """This process's open file descriptors: {fd: what it refers to}."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the descriptor listdir itself used, now closed
            pass
    return found


def _thread_names():
    return sorted(thread.name for thread in threading.enumerate())


class Soak:
    def __init__(self, args, context, ledger):
        self.args = args
        self.context = context
        self.ledger = ledger
        self.faults = {name: {"count": 0, "slowest_s": 0.0, "problems": 0} for name in FAULTS}
        self.closed_stats = []  # final stats of every Receiver closed so far
        self.senders_sent = []  # (incarnation, sent, killed, in_doubt)
        self.kill_windows = []  # (incarnation, done, counters before, receiver index)
        self.problems = []
        self.tally = Tally()
        self.receivers = 0
        self.interrupts = Interrupts()

    # receivers ------------------------------------------------------------------
    def open_receiver(self, port):
        # Alternately; the first and last (there is an odd number) block.
        on_full = ("block", "drop")[self.receivers % 2]
        self.receivers += 1
        rx = fastnet.Receiver(
            ("127.0.0.1", port),
            batch_size=BATCH,
            slot_size=SIZE,
            ring_size=RING,
            on_full=on_full,
            backend=self.args.backend,
            rcvbuf=self.args.rcvbuf,
        )
        return rx.start()

    def retire(self, rx):
        rx.close()
        self.closed_stats.append(rx.stats)

    def consume(self, rx, seconds):
        """Take batches for ``seconds`` (nothing if not positive)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                batch = rx.get(timeout=0.05)
            except TimeoutError:
                continue
            self.tally.take(batch)

    def drain(self, rx):
        """Take batches until none comes for a while (the sender is paused or stopped)."""
        quiet_since = time.monotonic()
        deadline = quiet_since + 10.0
        while time.monotonic() - quiet_since < 0.3 and time.monotonic() < deadline:
            try:
                batch = rx.get(timeout=0.05)
            except TimeoutError:
                continue
            self.tally.take(batch)
            quiet_since = time.monotonic()

    # faults ------------------------------------------------------------------------
    def _record(self, name, seconds, ok=True, note=None):
        entry = self.faults[name]
        entry["count"] += 1
        entry["slowest_s"] = max(entry["slowest_s"], round(seconds, 3))
        if not ok:
            entry["problems"] += 1
            self.problems.append(f"{name}: {note}")

    def shrink_rcvbuf(self, rx, slot):
        with stdsocket.socket(fileno=os.dup(rx.fileno())) as dup:
            before = dup.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF)
            dup.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 1)  # the kernel's minimum
            self.consume(rx, slot / 2)
            dup.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, before // 2)
        self._record("shrink-rcvbuf", 0.0)

    def pause_consumer(self, rx, slot):
        time.sleep(slot / 2)
        self._record("pause-consumer", 0.0)

    def sigint(self, rx, slot):
        timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
        self.interrupts.expect()
        started = time.monotonic()
        timer.start()
        try:
            while time.monotonic() - started < PROMPT_S * 5:
                self.interrupts.check()
                try:
                    self.tally.take(rx.get(timeout=PROMPT_S * 5))
                except TimeoutError:
                    pass
            self._record("sigint", time.monotonic() - started, False, "no KeyboardInterrupt")
        except KeyboardInterrupt:
            late = time.monotonic() - started - 0.1
            self._record("sigint", late, late < PROMPT_S, f"KeyboardInterrupt after {late:.2f} s")
            # The interrupt may land in get()'s last instructions (Condition.__exit__,
            # in threading.py, where the deferral above cannot see it), after the
            # batch was taken and counted delivered: get() had handed it over, so
            # count it. (No batch is refilled between being freed and the take
            # that follows under the same lock, so identity tells them apart.)
            held = rx._held
            if held is not None and held is not self.tally.last_batch:
                self.tally.take(held)
        finally:
            self.interrupts.done()
            timer.join()

    def kill_sender(self, rx, sender):
        before = rx.stats
        done = sender.kill()
        self.senders_sent.append([sender.incarnation, done, True, sender.in_doubt])
        started = time.monotonic()
        replacement = self.start_sender(rx.address[1], sender.incarnation + 1)
        self._record("kill-sender", time.monotonic() - started)
        # The killed sender's last datagrams are queued or dropped by now; let the
        # consumer take them, then see whether anything was dropped meanwhile.
        self.consume(rx, 0.3)
        after = rx.stats
        quiet = (after.kernel_drops, after.ring_overruns) == (before.kernel_drops, before.ring_overruns)
        self.kill_windows.append((sender.incarnation, done, quiet))
        return replacement

    def close_under(self, name, rx, sender):
        """Close the socket (or the Receiver) from another thread while the consumer waits."""
        sender.pause()
        self.drain(rx)
        _ = rx.stats  # reads the kernel's drop count while the socket is still open
        port = rx.address[1]
        if name == "close-socket":
            closer = threading.Timer(0.1, rx._sock.close)  # the fastnet.socket itself
        else:
            closer = threading.Timer(0.1, rx.close)
        started = time.monotonic()
        closer.start()
        outcome = "hang"
        try:
            while True:
                self.tally.take(rx.get(timeout=PROMPT_S * 5))
        except fastnet.ReceiverStopped:
            outcome = "stopped"
        except OSError as exc:
            outcome = f"OSError({exc.errno})"
        except TimeoutError:
            outcome = "hang"
        late = time.monotonic() - started - 0.1
        closer.join()
        expected = "stopped" if name == "close-receiver" else "OSError(9)"
        self._record(
            name,
            late,
            outcome == expected and late < PROMPT_S,
            f"the blocked get() ended with {outcome} after {late:.2f} s",
        )
        self.retire(rx)
        replacement = self.open_receiver(port)
        sender.resume()
        return replacement

    def start_sender(self, port, incarnation):
        return SenderProcess(
            self.context, self.ledger, ("127.0.0.1", port), self.args.pps, self.args.backend, incarnation
        )

    # the run ---------------------------------------------------------------------
    def run(self):
        args = self.args
        rx = self.open_receiver(0)
        sender = self.start_sender(rx.address[1], 1)
        slot = args.seconds / (args.cycles * len(FAULTS))
        started = time.monotonic()
        try:
            for index in range(args.cycles * len(FAULTS)):
                name = FAULTS[index % len(FAULTS)]
                # Each fault in the middle of its own slot of normal traffic.
                self.consume(rx, started + (index + 0.5) * slot - time.monotonic())
                if name == "shrink-rcvbuf":
                    self.shrink_rcvbuf(rx, slot)
                elif name == "pause-consumer":
                    self.pause_consumer(rx, slot)
                elif name == "sigint":
                    self.sigint(rx, slot)
                elif name == "kill-sender":
                    sender = self.kill_sender(rx, sender)
                else:
                    rx = self.close_under(name, rx, sender)
                self.consume(rx, started + (index + 1) * slot - time.monotonic())
            # The end: the consumer stops taking while datagrams keep coming, so
            # the ring and the socket's queue are full when the sender stops and
            # the Receiver closes: what is queued must come out as ``unread``.
            time.sleep(min(slot / 2, 0.5))
            self.senders_sent.append([sender.incarnation, sender.stop(), False, 0])
            sender = None
        finally:
            if sender is not None:  # interrupted: stop the sender, count what it sent
                self.senders_sent.append([sender.incarnation, sender.stop(), False, 0])
            self.retire(rx)
        self.settle_kills()

    def settle_kills(self):
        """Rows in a kill's window were sent if they arrived; the rest too unless nothing
        was dropped around the kill, in which case they were never sent."""
        for incarnation, done, quiet in self.kill_windows:
            entry = next(e for e in self.senders_sent if e[0] == incarnation)
            _, top = self.tally.per_incarnation.get(incarnation, (0, -1))
            arrived = max(0, top + 1 - done)
            entry[1] = done + arrived
            entry[3] = 0 if quiet else max(0, entry[3] - arrived)


def probe_rate(args, context, ledger):
    """The highest of PROBE_RATES received without loss, halved (quick: ~0.5 s per rate)."""
    clean = PROBE_RATES[0] // 2
    for pps in PROBE_RATES:
        rx = fastnet.Receiver(
            ("127.0.0.1", 0),
            batch_size=BATCH,
            slot_size=SIZE,
            ring_size=RING,
            backend=args.backend,
            rcvbuf=args.rcvbuf,
        ).start()
        sender = SenderProcess(context, ledger, ("127.0.0.1", rx.address[1]), pps, args.backend, 1)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            try:
                rx.get(timeout=0.05)
            except TimeoutError:
                pass
        sent = sender.stop()
        end = time.monotonic() + 2.0
        while rx.stats.accounted < sent and time.monotonic() < end:
            try:
                rx.get(timeout=0.05)
            except TimeoutError:
                pass
        rx.close()
        stats = rx.stats
        achieved = sent / 0.5
        if stats.packets != sent or achieved < 0.8 * pps:
            break
        clean = pps
    return clean // 2


def report(soak, args, resources, elapsed):
    sent = sum(entry[1] for entry in soak.senders_sent)
    in_doubt = sum(entry[3] for entry in soak.senders_sent)
    totals = {
        key: sum(getattr(s, key) for s in soak.closed_stats)
        for key in ("packets", "kernel_drops", "ring_overruns", "unread", "delivered")
    }
    accounted = totals["packets"] + totals["kernel_drops"] + totals["ring_overruns"] + totals["unread"]
    problems = list(soak.problems)
    if not 0 <= accounted - sent <= in_doubt:
        problems.append(f"accounting: sent {sent} (+ up to {in_doubt} in doubt) != accounted {accounted}")
    if soak.tally.seen != totals["delivered"]:
        problems.append(
            f"the consumer saw {soak.tally.seen} datagrams, the Receivers delivered {totals['delivered']}"
        )
    if soak.tally.out_of_order:
        problems.append(f"{soak.tally.out_of_order} datagrams out of order or twice")
    for incarnation, count_top in soak.tally.per_incarnation.items():
        entry = next((e for e in soak.senders_sent if e[0] == incarnation), None)
        if entry is None or count_top[0] > entry[1]:
            problems.append(f"sender {incarnation}: received {count_top[0]}, more than sent")
    problems += resources["problems"]
    return {
        "seconds": round(elapsed, 2),
        "backend": args.backend,
        "pps": args.pps,
        "rate_source": args.rate_source,
        "senders": len(soak.senders_sent),
        "senders_killed": sum(1 for e in soak.senders_sent if e[2]),
        "receivers": soak.receivers,
        "sent": sent,
        "in_doubt": in_doubt,
        **totals,
        "accounted": accounted,
        "difference": sent - accounted,
        "consumer_seen": soak.tally.seen,
        "faults": soak.faults,
        "resources": resources,
        "problems": problems,
        "ok": not problems,
    }


def print_report(result):
    print(
        f"fastnet soak: {result['seconds']} s on 127.0.0.1, {result['backend']} backend, "
        f"{result['pps']:,} datagrams/s ({result['rate_source']}), "
        f"{result['senders']} sender processes ({result['senders_killed']} killed), "
        f"{result['receivers']} Receivers"
    )
    print(f"{'fault':<16} {'times':>5}  {'slowest end of a blocked call':>30}")
    for name, entry in result["faults"].items():
        slow = f"{entry['slowest_s']:.3f} s" if name in ("sigint", "close-socket", "close-receiver") else "-"
        print(
            f"{name:<16} {entry['count']:>5}  {slow:>30}"
            f"{'  PROBLEMS: ' + str(entry['problems']) if entry['problems'] else ''}"
        )
    print("accounting, datagrams:")
    for key in ("sent", "packets", "kernel_drops", "ring_overruns", "unread"):
        print(f"  {key:<14} {result[key]:>12,}")
    print(f"  {'sent - (packets + kernel_drops + ring_overruns + unread)':<14} {result['difference']:,}")
    if result["in_doubt"]:
        print(f"  in doubt (killed while sending, with drops around the kill): {result['in_doubt']:,}")
    print(f"  consumer saw {result['consumer_seen']:,} (delivered {result['delivered']:,})")
    res = result["resources"]
    print(
        f"resources: fds {res['fds_before']} -> {res['fds_after']}, threads "
        f"{len(res['threads_before'])} -> {len(res['threads_after'])}, "
        f"child processes left {res['children_after']}"
    )
    print("OK" if result["ok"] else "FAIL:\n  " + "\n  ".join(result["problems"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="soak time (default 60)")
    parser.add_argument(
        "--pps", type=int, help="send rate (default: the highest loss-free rate found first, halved)"
    )
    parser.add_argument("--backend", choices=fastnet.available_backends(), default=fastnet.backend)
    parser.add_argument(
        "--cycles", type=int, help="times each fault is applied (default: once per 30 s, at least once)"
    )
    parser.add_argument("--rcvbuf", type=int, default=4 << 20)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.cycles is None:
        args.cycles = max(1, round(args.seconds / 30))
    if not 0 < args.seconds <= 24 * 3600 or args.cycles < 1:
        parser.error("--seconds must be in (0, 86400] and --cycles at least 1")

    context = multiprocessing.get_context("spawn")  # never fork a threaded process
    ledger = context.RawArray("q", 4)
    # The harness's own machinery exists before the count starts: the shared
    # ledger, and the resource tracker every spawned process registers with
    # (multiprocessing starts it at the first spawn and keeps a pipe to it).
    resource_tracker.ensure_running()
    fds_before = _fds()
    resources = {"fds_before": len(fds_before), "threads_before": _thread_names()}
    args.rate_source = "given"
    if args.pps is None:
        args.pps = probe_rate(args, context, ledger)
        args.rate_source = "auto: half the highest loss-free probe rate"
    soak = Soak(args, context, ledger)
    started = time.monotonic()
    interrupted = False
    previous = signal.signal(signal.SIGINT, soak.interrupts.handler)
    try:
        soak.run()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, previous)
    elapsed = time.monotonic() - started
    fds_after = _fds()
    resources.update(
        fds_after=len(fds_after),
        threads_after=_thread_names(),
        children_after=len(context.active_children()),
        problems=[],
    )
    if fds_after.keys() != fds_before.keys():
        opened = {fd: target for fd, target in fds_after.items() if fd not in fds_before}
        closed = sorted(set(fds_before) - set(fds_after))
        resources["problems"].append(
            f"file descriptors {len(fds_before)} -> {len(fds_after)} (left open: {opened}; closed: {closed})"
        )
    if resources["threads_after"] != resources["threads_before"]:
        resources["problems"].append(f"threads {resources['threads_before']} -> {resources['threads_after']}")
    if resources["children_after"]:
        resources["problems"].append(f"{resources['children_after']} child processes left")
    result = report(soak, args, resources, elapsed)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    if interrupted:
        return 130
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
