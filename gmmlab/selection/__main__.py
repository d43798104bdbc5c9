"""``python -m gmmlab.selection``: the same as ``gmmlab-select``."""

import sys

from gmmlab.selection.cli import main

sys.exit(main())
