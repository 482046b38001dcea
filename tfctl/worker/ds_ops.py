"""DeepSpeed's CPU shared-memory op, from the rank's side: skipped for one rank, built once by `make setup`.

One rank has no peer to share memory with: `skip_shared_memory_op` keeps DeepSpeed from probing, building or
loading the op at all (its collectives then go through torch.distributed, as they do where the op is absent).
Where ops are built and how their build locks are waited on is tfctl/stage/extensions.py.
"""

import sys
from pathlib import Path

from tfctl.errors import UserError
from tfctl.stage.extensions import bound_torch_lock_waits, extensions_dir, use_environment_extensions_dir


def skip_shared_memory_op() -> None:
    """For a single rank: DeepSpeed then neither probes its ops (compiler subprocesses) nor builds or loads the
    shared-memory op, which only ever serves communication between ranks."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__ = {}  # the probe's cached result, read only when the comm backend starts


def build_shared_memory_op() -> Path:
    """Build (or find up to date) the CPU shared-memory op in this environment's directory; `make setup`.
    Through the very function DeepSpeed's comm backend calls: a build command that differs in any way from the
    one the ranks run would make their first start rebuild it."""
    from deepspeed.comm.torch import build_shm_op

    use_environment_extensions_dir()
    bound_torch_lock_waits()
    build_shm_op()
    return extensions_dir()


if __name__ == "__main__":
    try:
        print(f"DeepSpeed ops built in {build_shared_memory_op()}")
    except UserError as error:
        print(f"tfctl: {error}", file=sys.stderr)
        sys.exit(2)
