"""`python -m fer_core`: the command-line interface."""

import signal
import sys

from fer_core.cli import main

# Piped into `head` or `less` that quits early, a command ends quietly, as other shell tools do,
# instead of printing a BrokenPipeError traceback.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sys.exit(main())
