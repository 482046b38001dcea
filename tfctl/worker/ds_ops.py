"""DeepSpeed's CPU shared-memory op, from the rank's side: skipped for one rank, built once by `make setup`.

One rank has no peer to share memory with: `skip_shared_memory_op` keeps DeepSpeed from probing, building or
loading the op at all (its collectives then go through torch.distributed, as they do where the op is absent).
Where ops are built and how their build locks are waited on is tfctl/stage/extensions.py.
"""

import os
import sys
from pathlib import Path

from tfctl.errors import UserError
from tfctl.stage.extensions import bound_torch_lock_waits, extensions_dir, use_environment_extensions_dir


def skip_shared_memory_op() -> None:
    """For a single rank: DeepSpeed then neither probes its ops (compiler subprocesses) nor builds or loads the
    shared-memory op, which only ever serves communication between ranks."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__ = {}  # the probe's cached result, read only when the comm backend starts


SHARED_MEMORY_DIR = Path("/dev/shm")


def shared_memory_name(rank: int) -> str:
    """A rank's buffer as DeepSpeed's shm.cpp names it: <prefix>_<uid>_<MASTER_ADDR>_<MASTER_PORT>_<rank>."""
    addr, port = os.environ.get("MASTER_ADDR", ""), os.environ.get("MASTER_PORT", "")
    return f"deepspeed_allreduce_buffer_{os.getuid()}_{addr}_{port}_{rank}"


def release_shared_memory_name() -> None:
    """Unlink this rank's shared-memory buffer once every rank has mapped every peer's.

    DeepSpeed creates one 66 MB buffer a rank (where all ranks are on one node) and never unlinks it: each
    2-rank stage left 132 MB of RAM in /dev/shm until reboot (a study's worth of stages fills it). Its
    initialisation returns only after this rank opened all its peers' buffers, so after a barrier no rank
    opens a name again; the mappings stay valid until the processes exit."""
    import torch.distributed as dist
    from deepspeed.accelerator import get_accelerator

    world_size = dist.get_world_size()
    if get_accelerator().device_name() != "cpu" or world_size < 2:
        return  # the op serves CPU ranks only
    if int(os.environ.get("LOCAL_SIZE", "0") or 0) != world_size:
        return  # not every rank on this node (or not the deepspeed launcher): DeepSpeed created nothing
    dist.barrier()
    try:
        (SHARED_MEMORY_DIR / shared_memory_name(dist.get_rank())).unlink()
    except OSError:
        pass  # not created (op absent) or not there: nothing to release


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
