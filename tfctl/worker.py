"""`python -m tfctl.worker SPEC.json`: see tfctl.train.worker."""

import sys

from tfctl.train.worker import main

if __name__ == "__main__":
    sys.exit(main())
