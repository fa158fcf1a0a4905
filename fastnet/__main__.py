"""``python -m fastnet`` is the ``fastnet`` command."""

import sys

from fastnet.cli import main

sys.exit(main())
