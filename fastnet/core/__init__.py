"""The socket and what it is made of: Batch, argument checks, waiting and closing while
blocked, asyncio, GSO planning, buffers, features, TCP framing settings, multicast, addresses."""
