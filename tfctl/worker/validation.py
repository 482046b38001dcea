"""The training-time validation loss over the fixed eval batches, the same number whatever the world size.

(`tfctl eval --text` scores a finished model directory: tfctl/run/eval_generate.py; `tfctl eval --tasks`
runs lm-eval tasks: tfctl/downstream/.)

Each batch's mean loss is summed over the ranks that ran it and divided by the number of batches: ranks
take batches round-robin (ZeRO 0–2), or every rank runs all of them (ZeRO 3: its forward is collective,
so every rank must run the same number of batches).
"""

import torch
import torch.distributed as dist


def validation_loss(engine, batches: list, rank: int, world_size: int, shard: bool = True) -> float:
    mine = range(rank, len(batches), world_size) if shard else range(len(batches))
    device = next(engine.module.parameters()).device
    total = torch.zeros((), dtype=torch.float64, device=device)
    engine.eval()
    with torch.no_grad():
        for index in mine:
            x, y = batches[index]
            _, loss = engine(torch.as_tensor(x, device=device), torch.as_tensor(y, device=device))
            total += loss.double()
    engine.train()
    if shard and world_size > 1:
        dist.all_reduce(total)
    return total.item() / len(batches)
