"""Helpers shared by the benchmarks."""

import fastnet


def filled_batch(rows, size):
    batch = fastnet.Batch(rows, size)
    batch.data[:] = 0x5A
    batch.lengths[:] = size
    batch.count = rows
    return batch


def drain(sock, batch):
    """Take everything queued on ``sock``; return how many datagrams that was."""
    total = 0
    while True:
        try:
            total += sock.recv_batch(batch, timeout=0)
        except BlockingIOError:
            return total
