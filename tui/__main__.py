"""``python -m tui``: the ``routeshell`` command line (how the Train pane starts its jobs)."""

import sys

from tui.cli import main

sys.exit(main())
