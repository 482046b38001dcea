"""Training-step tokens/s: the Tokenformer and tfctl's Transformer against a plain reference GPT.

All three have the same backbone (layers, d, heads, seq, vocab) and the same non-embedding parameter count:
the reference GPT has 4d² attention + 8d² MLP per block; the Tokenformer's token count and the Transformer's
MLP width are solved to match it. Every step function runs round-robin in one process (measure.py), with the
peak matmuls of the same rounds for MFU.
"""

import dataclasses

import torch

from tfctl.bench.measure import interleaved_medians, synchronize
from tfctl.bench.reference_gpt import ReferenceGPT, ReferenceGPTConfig
from tfctl.model import TokenformerConfig, TransformerConfig, build_model
from tfctl.model.flops import training_flops_per_token
from tfctl.model.sizes import count_params, embedding_params, solve_ffn_hidden, solve_tokens

REFERENCE = "reference-gpt"


@dataclasses.dataclass
class Family:
    """One model of the comparison: how to build it, and its size and FLOPs."""

    name: str
    build: object  # () -> nn.Module
    config: object
    non_embedding_params: int
    flops_per_token: int


def families(config) -> dict[str, Family]:
    """The reference GPT, the Tokenformer (qkv : proj : ffn tokens = 1 : 1 : 4, the paper's ratios) and the
    Transformer, all at the reference's non-embedding parameter count."""
    reference = ReferenceGPTConfig(
        vocab_size=config.vocab_size,
        seq_len=config.seq_len,
        n_layers=config.n_layers,
        n_heads=config.n_heads,
        d_model=config.d_model,
    )
    reference_params = ReferenceGPT(reference).get_num_params(non_embedding=True)
    shape = dict(
        vocab_size=config.vocab_size,
        seq_len=config.seq_len,
        n_layers=config.n_layers,
        d_model=config.d_model,
        n_heads=config.n_heads,
    )
    tokenformer = TokenformerConfig(**shape)
    tokenformer = solve_tokens(tokenformer, reference_params + embedding_params(tokenformer))
    transformer = TransformerConfig(**shape)
    # solved to 1536 (a multiple of 64; the exact 1537 runs far slower on CPU BLAS)
    transformer = solve_ffn_hidden(transformer, reference_params + embedding_params(transformer))
    found = {
        REFERENCE: Family(
            REFERENCE,
            lambda: ReferenceGPT(reference),
            reference,
            reference_params,
            ReferenceGPT(reference).flops_per_token(),
        )
    }
    for name, model_config in (("tokenformer", tokenformer), ("transformer", transformer)):
        found[name] = Family(
            name,
            lambda model_config=model_config: build_model(model_config),
            model_config,
            count_params(model_config, non_embedding=True),
            training_flops_per_token(model_config, config.seq_len),
        )
    return found


def training_step(model, optimizer, x, y, dtype: str, device: str):
    """One optimizer step: forward, backward, AdamW. bf16 = autocast (fp32 weights, bf16 matmuls)."""
    device_type = torch.device(device).type

    def step():
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def ratios(rows: list[dict]) -> None:
    """Adds `vs_reference` (tokens/s over the reference GPT's, wall clock; `vs_reference_cpu` the same from
    process CPU time, which a loaded machine disturbs less) and the Tokenformer's `vs_transformer`."""

    def twin(row: dict, family: str) -> dict | None:
        return next(
            (
                r
                for r in rows
                if r.get("family") == family and r["mode"] == row["mode"] and r["dtype"] == row["dtype"]
            ),
            None,
        )

    for row in rows:
        if "skipped" in row or row["family"] == REFERENCE:
            continue
        reference = twin(row, REFERENCE)
        if reference:
            row["vs_reference"] = reference["median_s"] / row["median_s"]
            row["vs_reference_cpu"] = reference["cpu_median_s"] / row["cpu_median_s"]
        if row["family"] == "tokenformer" and twin(row, "transformer"):
            row["vs_transformer"] = row["tokens_per_s"] / twin(row, "transformer")["tokens_per_s"]


def bench_training(config, peaks: dict, peak_cases: dict, useful_dtypes: list[str]) -> list[dict]:
    """Tokens/s of each (family, mode, dtype), all step functions timed round-robin with the peak matmuls."""
    torch.manual_seed(0)
    x = torch.randint(0, config.vocab_size, (config.batch, config.seq_len), device=config.device)
    y = torch.randint(0, config.vocab_size, (config.batch, config.seq_len), device=config.device)
    cases, meta = {}, {}
    for family in families(config).values():
        torch.manual_seed(0)
        model = family.build().to(config.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        modes = {"eager": model}
        if config.compile:
            modes["compile"] = torch.compile(
                model
            )  # shares the parameters: one model, several step functions
        for mode, module in modes.items():
            for dtype in useful_dtypes:
                name = f"{family.name} {mode} {dtype}"
                cases[name] = training_step(module, optimizer, x, y, dtype, config.device)
                meta[name] = {
                    "family": family.name,
                    "mode": mode,
                    "dtype": dtype,
                    "non_embedding_params": family.non_embedding_params,
                    "flops_per_token": family.flops_per_token,
                }
    # the peak matmuls run in the same rounds as the steps: MFU divides two numbers measured under the same load
    matmuls = {f"peak {dtype}": (matmul, flops) for dtype, matmul, flops in peak_cases.values()}
    timed = interleaved_medians(
        {**cases, **{name: fn for name, (fn, _) in matmuls.items()}},
        config.rounds,
        config.warmup,
        config.device,
    )
    tokens = config.batch * config.seq_len
    rows = []
    for name, info in meta.items():
        tokens_per_s = tokens / timed[name]["median_s"]
        peak = matmuls[f"peak {info['dtype']}"][1] / timed[f"peak {info['dtype']}"]["median_s"]
        rows.append(
            {
                "case": name,
                **info,
                **timed[name],
                "tokens_per_s": tokens_per_s,
                "model_flops_per_s": info["flops_per_token"] * tokens_per_s,
                "peak_flops_per_s": peak,
                "mfu": info["flops_per_token"] * tokens_per_s / peak,
            }
        )
    ratios(rows)
    for dtype in (d for d in config.dtypes if d not in useful_dtypes):
        rows.append(
            {
                "case": f"* {dtype}",
                "dtype": dtype,
                "skipped": (
                    f"{dtype} matmul runs at {peaks[dtype]['flops_per_s'] / 1e9:.2f} GFLOP/s here, "
                    f"{peaks[dtype]['flops_per_s'] / peaks['fp32']['flops_per_s']:.3f}x fp32 (no native {dtype}); "
                    "--force-bf16 runs it anyway"
                ),
            }
        )
    return rows


def profile_steps(config, row_limit: int = 12) -> dict[str, list[dict]]:
    """The top ops (self CPU/device time) of two eager fp32 training steps of each family."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + (
        [ProfilerActivity.CUDA] if config.device.startswith("cuda") else []
    )
    x = torch.randint(0, config.vocab_size, (config.batch, config.seq_len), device=config.device)
    tops = {}
    for family in families(config).values():
        model = family.build().to(config.device)
        step = training_step(model, torch.optim.AdamW(model.parameters()), x, x, "fp32", config.device)
        step()
        with profile(activities=activities) as prof:
            step()
            step()
            synchronize(config.device)
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) or 1
        tops[family.name] = [
            {"op": e.key, "self_share": e.self_cpu_time_total / total, "calls": e.count}
            for e in events[:row_limit]
        ]
    return tops
