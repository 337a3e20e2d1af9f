"""``python -m catchjax.cli``: the same as the ``catchjax`` command."""

import sys

from catchjax.cli import main

sys.exit(main())
