"""`python -m perfsuite`: the perfsuite command (see perfsuite.cli)."""

import sys

from perfsuite.cli import main

if __name__ == "__main__":
    sys.exit(main())
