"""`python -m tfctl.worker SPEC.json`: train one stage on this rank (see tfctl.worker.main)."""

import sys

from tfctl.worker.main import main

sys.exit(main())
