"""asyncio: sock.recv_batch_async and ``async for`` over a Receiver.

Every test runs on asyncio's own event loop and on uvloop's (the ``run``
fixture), with each engine.
"""

import asyncio
import random
import threading

import pytest
from helpers import HANG_S, numbers_in, send_numbered

import fastnet

pytestmark = pytest.mark.core


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """run(coroutine): run it on a fresh loop of this kind, failing (not hanging) after 20 s."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop", reason="uvloop is in the test extra: pip install -e '.[test]'")
        start, module = uvloop.run, "uvloop"
    else:
        start, module = asyncio.run, "asyncio"

    def run(coroutine, timeout=20):
        async def bounded():
            assert type(asyncio.get_running_loop()).__module__.startswith(module)
            return await asyncio.wait_for(coroutine, timeout)

        return start(bounded())

    return run


def test_recv_batch_async_receives(pair, family_host, run):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(16, 64, family=family)

    async def main():
        task = asyncio.ensure_future(receiver.recv_batch_async(batch))
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting, without blocking the loop
        send_numbered(sender, receiver.getsockname(), 0, 5)
        return await task

    assert run(main()) == 5 == batch.count
    assert numbers_in(batch) == [0, 1, 2, 3, 4]


def test_queued_datagrams_are_taken_without_waiting(pair, family_host, run):
    receiver, sender = pair
    family, _ = family_host
    send_numbered(sender, receiver.getsockname(), 0, 3)
    batch = fastnet.Batch(2, 64, family=family)
    assert run(receiver.recv_batch_async(batch)) == 2
    assert run(receiver.recv_batch_async(batch)) == 1
    assert numbers_in(batch) == [2]


def test_cancellation_leaves_the_socket_usable(pair, family_host, run):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(4, 64, family=family)

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(receiver.recv_batch_async(batch))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The reader was removed: there is nothing left to remove. (asyncio
        # says False; uvloop's remove_reader returns None whatever it did.)
        nothing = None if type(loop).__module__.startswith("uvloop") else False
        assert loop.remove_reader(receiver.fileno()) is nothing
        send_numbered(sender, receiver.getsockname(), 7, 1)
        return await receiver.recv_batch_async(batch)

    assert run(main()) == 1
    assert numbers_in(batch) == [7]


def test_timeout_by_wait_for_loses_nothing(pair, family_host, run):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(4, 64, family=family)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(receiver.recv_batch_async(batch), 0.05)
        send_numbered(sender, receiver.getsockname(), 0, 2)
        return await receiver.recv_batch_async(batch)

    assert run(main()) == 2


def test_cancelling_at_random_moments_loses_no_datagram(backend, run):
    """Every datagram ends in a batch returned, or is still queued afterwards."""
    rng = random.Random(1234)
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.set_buffers(rcvbuf=4 << 20)
        address = receiver.getsockname()

        async def main():
            got, sent = [], 0
            batch = fastnet.Batch(8, 64)
            for _ in range(300):
                task = asyncio.ensure_future(receiver.recv_batch_async(batch))
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                if rng.random() < 0.7:
                    k = rng.randrange(1, 5)
                    send_numbered(sender, address, sent, k)
                    sent += k
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                else:
                    got.extend(numbers_in(batch))
            return got, sent

        got, sent = run(main())
        rest = fastnet.Batch(1024, 64)
        receiver.setblocking(False)
        try:
            receiver.recv_batch(rest)
            got.extend(numbers_in(rest))
        except BlockingIOError:
            pass
        assert got == list(range(sent))
        assert sent > 0


def test_close_from_another_thread_ends_the_wait(pair, family_host, run):
    receiver, _ = pair
    family, _ = family_host

    async def main():
        closer = threading.Timer(0.1, receiver.close)
        closer.start()
        with pytest.raises(OSError) as info:
            await receiver.recv_batch_async(fastnet.Batch(4, 4, family=family))
        closer.join()
        return info.value.errno

    assert run(main(), timeout=HANG_S) == 9  # run() fails a wait the close did not end
    assert receiver.fileno() == -1


def test_bad_batch_is_refused(pair, run):
    receiver, _ = pair
    with pytest.raises(TypeError):
        run(receiver.recv_batch_async(bytearray(10)))


# -- Receiver ---------------------------------------------------------------------
def test_async_for_over_a_receiver(backend, run):
    with (
        fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=64, rcvbuf=1 << 20) as rx,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):

        async def main():
            seen = []

            async def produce():
                for start in range(0, 200, 50):
                    await asyncio.sleep(0.01)
                    send_numbered(sender, rx.address, start, 50)

            producer = asyncio.ensure_future(produce())
            async for batch in rx:
                seen.extend(numbers_in(batch))
                if len(seen) >= 200:
                    break
            await producer
            return seen

        assert run(main()) == list(range(200))


def test_async_for_ends_when_stopped_from_another_thread(backend, run):
    with fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4) as rx:

        async def main():
            stopper = threading.Timer(0.2, rx.stop)
            stopper.start()
            batches = [batch async for batch in rx]
            stopper.join()
            return batches

        assert run(main(), timeout=HANG_S) == []  # run() fails if the stop did not end it
        assert rx._async_waiters == []


def test_async_for_raises_capture_errors(backend, run):
    def failing_sink(batch):
        raise RuntimeError("sink failed")

    with (
        fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4) as rx,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        rx._sinks.append(failing_sink)

        async def main():
            counts = []
            with pytest.raises(RuntimeError, match="sink failed"):
                async for batch in rx:
                    counts.append(batch.count)
                    send_numbered(sender, rx.address, 1, 1)
                    await asyncio.sleep(0)
            return counts

        send_numbered(sender, rx.address, 0, 1)
        assert run(main()) == [1]
