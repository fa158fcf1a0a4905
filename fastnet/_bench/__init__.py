"""The machinery behind ``fastnet bench``: UDP throughput on loopback, per backend.

Each measurement is a pair of processes on 127.0.0.1, a receiver and a sender
(``python -m fastnet._bench.peer`` or the compiled C reference), so that the two
sides do not share an interpreter, a GIL or, when pinned, a CPU.

Modules, one job each:

* ``loops``     the sender and receiver loops of the Python backends
* ``peer``      the entry point of one peer process (``python -m fastnet._bench.peer``)
* ``reference`` compiling and locating the C reference peer (``reference.c``)
* ``gso``       whether fastnet's GSO/GRO API and the kernel's support are there
* ``backends``  which backends exist, whether each can run here, their command lines
* ``runner``    starting the pair, pinning, timing out, collecting their reports, rounds
* ``reconcile`` whether a measurement's counts add up
* ``stats``     medians and spreads of repeated figures
* ``report``    derived columns, the terminal table, the JSON document
* ``plot``      the ``--plot`` figure
* ``find_rate`` the loss-free rate search of ``--find-rate``
* ``machine``   what the JSON report says about the machine
* ``tcp``       the ``--proto tcp`` rows; ``tcp_run`` their two worker processes
"""

#: Every backend, in the order rows are shown.
BACKENDS = (
    "cython",
    "cython-gso",
    "python",
    "stdlib",
    "asyncio",
    "uvloop",
    "reference",
    "reference-gso",
)

#: Rows measured only when named (``--backends``, ``--sender``, ``--receiver``):
#: ``reference-gro-rows`` is the C GRO receiver receiving into the memory of a
#: fastnet Batch (1024 rows of the datagram size), for the GRO receive gap.
OPTIONAL_BACKENDS = ("reference-gro-rows",)

#: Datagram sizes measured when ``--sizes`` is not given.
DEFAULT_SIZES = (64, 1024, 8192)

#: Largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
MAX_DATAGRAM = 65507

#: Receive buffer asked for on every receiver (SO_RCVBUFFORCE where permitted).
RCVBUF = 32 << 20
