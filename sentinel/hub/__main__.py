"""`python -m sentinel.hub …` (the same as `sentinel hub …`)."""

import sys

from sentinel.hub.cli import main

sys.exit(main())
