"""Receiving for acquisition scripts: the Receiver (capture thread and ring), its stats,
sequence tracking, and fan-out over worker processes."""
