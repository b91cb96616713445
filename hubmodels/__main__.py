"""``python -m hubmodels VERB``: the command line lives in ``hubmodels.cli``."""

import sys

from hubmodels.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
