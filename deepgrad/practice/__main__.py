"""``python -m deepgrad.practice ACTION ...`` (the same as ``deepgrad practice ACTION ...``)."""

import sys

from .cli import main

sys.exit(main())
