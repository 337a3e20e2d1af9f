"""``python -m catchjax``: the same as the ``catchjax`` command (and ``python -m catchjax.cli``)."""

import sys

from catchjax.cli import main

sys.exit(main())
