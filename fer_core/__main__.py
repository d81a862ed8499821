"""`python -m fer_core`: the command-line interface."""

import sys

from fer_core.cli import main

sys.exit(main())
