"""Frames: datagrams put back together into instrument frames by their headers.

``spec`` and ``field`` describe the headers; ``assembler`` runs an engine's
placement over Batches and hands out ``frame.Frame`` objects; ``hdf5`` and
``zarr_store`` write them; ``metrics`` exports counters; ``synthetic`` makes
test traffic.
"""
