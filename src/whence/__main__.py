"""``python -m whence``: the command line (see :mod:`whence.cli`)."""

import sys

from .cli import main

sys.exit(main())
