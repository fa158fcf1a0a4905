"""Sending at a rate: the Sender, its token-bucket pacing, and replaying a capture."""
