"""How a rank ends: together with the other ranks, and without finalizing the interpreter under gloo's threads.

Why (issue 15, item 0). Under load a 2-rank stage sometimes ended with rank 1 aborting — `terminate called
without an active exception`, SIGABRT, exit 250 from the deepspeed launcher — after training had finished.
Its core dump: the main thread is in `Py_FinalizeEx`; a gloo worker thread (`ProcessGroupGloo::runLoop`) is
destroying its last reference to a finished `AsyncAllreduceWork`, whose tensors decref their Python objects;
that takes the GIL, a finalizing interpreter answers with `pthread_exit`, and the forced unwind through the
destructor calls `std::terminate`. The collective itself had completed; the worker thread had only not yet
dropped its reference — a window that is short on an idle machine and wide when that thread is descheduled.
`destroy_process_group` joins the threads of a group only when nothing else references it, and DeepSpeed
keeps its own groups (the ZeRO data-parallel group here), so it cannot close the window. Rank 1 reaches the
exit first because rank 0 still writes the export; and the deepspeed launcher kills every rank as soon as one
exits non-zero, so the abort could also cut rank 0's export short.

So every rank ends in two steps:
- `leave_process_group()`, after a normal end only: a barrier (no rank exits while another still works —
  rank 0 writing the export), then `destroy_process_group`. On an error path a peer may be gone or stuck in
  another collective, so nothing collective is attempted there.
- `exit_now(code)`: flush what Python buffers, then `os._exit`: the interpreter is never finalized while C++
  threads may still call into it.
"""

import logging
import os
import sys

import torch.distributed as dist


def leave_process_group() -> None:
    """Wait for every rank, then tear the process groups down. Call on every rank, after a normal end."""
    if not dist.is_available() or not dist.is_initialized():
        return
    if dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()


def exit_now(code: int) -> None:
    """End the process with `code` after flushing the standard streams and logging; skips finalization."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
