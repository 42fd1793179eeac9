"""`python -m perfsuite`: the perfsuite command (see perfsuite.cli)."""

import sys

from perfsuite.cli import main

sys.exit(main())
