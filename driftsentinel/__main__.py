"""``python -m driftsentinel``: the command-line interface (same as ``driftsentinel``)."""

import sys

from driftsentinel.stream.cli import main

if __name__ == "__main__":
    sys.exit(main())
