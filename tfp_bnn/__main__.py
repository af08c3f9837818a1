"""``python -m tfp_bnn``: the same as the ``tfp-bnn`` command."""

import sys

from tfp_bnn.cli import main

sys.exit(main())
