"""``python -m inspector``: the same as the ``training-inspector`` command."""

import sys

from inspector.cli import main

if __name__ == "__main__":
    sys.exit(main())
