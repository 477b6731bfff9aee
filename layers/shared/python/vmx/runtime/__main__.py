"""`python -m vmx.runtime`: what bin/vmx-streaming-runtime starts in place of the managed runtime's loop."""

import os
import sys

from vmx.runtime.client import run

if __name__ == "__main__":
    sys.exit(run(os.environ))
