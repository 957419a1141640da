"""``python -m pygatt``: the pygatt command line (see :mod:`pygatt.cli`)."""

import sys

from pygatt.cli import main

sys.exit(main())
