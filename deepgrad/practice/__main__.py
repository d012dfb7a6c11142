"""``python -m deepgrad.practice ACTION ...`` (the same as ``deepgrad practice ACTION ...``)."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (docs, tests) must not run the command
    sys.exit(main())
