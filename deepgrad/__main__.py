"""``python -m deepgrad``: the same as the ``deepgrad`` command."""

import sys

from .cli import main

sys.exit(main())
