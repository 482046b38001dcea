"""`python -m tfctl.worker SPEC.json`: train one stage on this rank (see tfctl.worker.main).

The process ends through `exit_now`: the interpreter is not finalized (see tfctl.worker.shutdown)."""

import os
import traceback

from tfctl.stage.exit_codes import EXIT_TRAINING_ERROR
from tfctl.worker.faults import inject
from tfctl.worker.main import main
from tfctl.worker.shutdown import exit_now

try:
    code = main()
except SystemExit as exit:  # argparse's usage errors
    code = 0 if exit.code is None else exit.code if isinstance(exit.code, int) else EXIT_TRAINING_ERROR
except BaseException:  # a bug: loud, with its traceback, and the same orderly exit
    traceback.print_exc()
    code = EXIT_TRAINING_ERROR
inject("abort_at_exit", int(os.environ.get("RANK", 0)))
exit_now(code)
