"""Capture files: pcap and .npy writers, the recorder thread, and reading captures back as Batches."""
