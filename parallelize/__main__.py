"""``python -m parallelize``: the command line (see ``parallelize.cli``)."""

import sys

from .cli import main

sys.exit(main())
