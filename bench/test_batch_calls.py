"""Cost of one batch call on each backend (pytest-benchmark).

    python -m pytest bench/ --benchmark-columns=min,median,iqr,ops

* recv_batch taking 1024 datagrams of 64 B already queued on the socket;
* send_batch of 64 and of 1024 rows of 64 B into an empty receive queue.

Each round starts from the same state (queue filled, or emptied) in an
untimed setup step. ``extra_info`` adds the median per datagram.
"""

import pytest
from bench_helpers import drain, filled_batch

SIZE = 64
ROUNDS = 200


def per_datagram(benchmark, rows):
    benchmark.extra_info["rows"] = rows
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing timed
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info["median_ns_per_datagram"] = round(median * 1e9 / rows, 1)


def test_recv_batch_drains_1024(benchmark, pair):
    receiver, sender = pair
    rows = 1024
    outgoing = filled_batch(rows, SIZE)
    incoming = filled_batch(rows, SIZE)
    address = receiver.getsockname()
    received = []

    def fill():
        drain(receiver, incoming)
        assert sender.send_batch(outgoing, address) == rows  # queued on return (loopback)

    def receive():
        received.append(receiver.recv_batch(incoming, timeout=0))

    benchmark.pedantic(receive, setup=fill, rounds=ROUNDS, iterations=1, warmup_rounds=5)
    assert set(received) == {rows}  # every call took the whole queue
    per_datagram(benchmark, rows)


@pytest.mark.parametrize("rows", [64, 1024])
def test_send_batch(benchmark, pair, rows):
    receiver, sender = pair
    outgoing = filled_batch(rows, SIZE)
    incoming = filled_batch(1024, SIZE)
    address = receiver.getsockname()
    sent = []

    def empty_queue():
        drain(receiver, incoming)

    def send():
        sent.append(sender.send_batch(outgoing, address))

    benchmark.pedantic(send, setup=empty_queue, rounds=ROUNDS, iterations=1, warmup_rounds=5)
    assert set(sent) == {rows}
    assert drain(receiver, incoming) == rows  # the last round's datagrams all arrived
    per_datagram(benchmark, rows)
