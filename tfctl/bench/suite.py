"""The benchmark suite: every measurement in one process, one run, so the ratios between them hold.

Sections: (1) training-step tokens/s of Tokenformer vs the baseline Transformer at matched non-embedding
parameters, eager and torch.compile, fp32 and bf16; (2) MFU against the matmul peak measured in the same run;
(3) one Pattention layer vs an nn.Linear / GeLU MLP of the same parameter count; (4) growth 124M → 1.4B time and
peak RSS (in fresh processes); (5) data-preparation (tokenization) MB/s.
"""

import dataclasses
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from tfctl.bench.measure import interleaved_medians, matmul_case, synchronize

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# bf16 model steps are skipped when bf16 matmuls run below this fraction of fp32 (a CPU without native bf16
# emulates it ~100x slower: a step would take minutes and say nothing about the model).
BF16_USEFUL = 0.25


@dataclasses.dataclass
class BenchConfig:
    device: str = "cpu"
    d_model: int = 512
    n_layers: int = 8
    n_heads: int = 8
    seq_len: int = 512
    batch: int = 1  # sequences per training step
    vocab_size: int = 8192
    rounds: int = 5  # timed calls per case, round-robin over the cases
    warmup: int = 2
    compile: bool = True
    dtypes: tuple[str, ...] = ("fp32", "bf16")
    force_bf16: bool = False  # run bf16 model steps even where bf16 matmuls are slow
    layers: bool = True
    growth: bool = True
    data: bool = True
    profile: bool = False  # torch.profiler top ops of one eager step of each family

    @classmethod
    def quick(cls, **overrides) -> "BenchConfig":
        """A smoke run of every section in seconds (growth, which writes GBs, stays off)."""
        values = dict(
            d_model=64,
            n_layers=2,
            n_heads=2,
            seq_len=64,
            batch=2,
            vocab_size=512,
            rounds=2,
            warmup=1,
            growth=False,
        )
        return cls(**{**values, **overrides})


def model_configs(config: BenchConfig):
    """The Tokenformer (qkv = proj = d tokens, ffn = 4d: the paper's 1:1:4) and the Transformer whose MLP width
    matches its parameter count."""
    from tfctl.model import TokenformerConfig, TransformerConfig
    from tfctl.model.sizes import count_params, solve_ffn_hidden

    shape = dict(
        vocab_size=config.vocab_size,
        seq_len=config.seq_len,
        n_layers=config.n_layers,
        d_model=config.d_model,
        n_heads=config.n_heads,
    )
    n = config.d_model
    tokenformer = TokenformerConfig(**shape, qkv_tokens=n, proj_tokens=n, ffn_tokens=4 * n)
    transformer = solve_ffn_hidden(TransformerConfig(**shape), count_params(tokenformer))
    return {"tokenformer": tokenformer, "transformer": transformer}


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


def peak_cases(config: BenchConfig) -> dict:
    size = 4096 if config.device.startswith("cuda") else 1024
    cases = {}
    for dtype in config.dtypes:
        # a CPU without native bf16 needs seconds for one 1024² bf16 matmul: measure it smaller
        dtype_size = 256 if dtype == "bf16" and not config.device.startswith("cuda") else size
        cases[f"matmul {dtype} {dtype_size}²"] = (
            dtype,
            *matmul_case(dtype_size, DTYPES[dtype], config.device),
        )
    return cases


def measure_peaks(config: BenchConfig) -> dict[str, dict]:
    cases = peak_cases(config)
    timed = interleaved_medians(
        {name: case[1] for name, case in cases.items()},
        rounds=max(3, config.rounds),
        warmup=1,
        device=config.device,
    )
    return {
        dtype: {"case": name, "flops_per_s": flops / timed[name]["median_s"], **timed[name]}
        for name, (dtype, _, flops) in cases.items()
    }


def bench_training(config: BenchConfig, peaks: dict) -> list[dict]:
    """Tokens/s of each (family, mode, dtype), all step functions timed round-robin with the peak matmuls."""
    from tfctl.model import build_model
    from tfctl.model.flops import training_flops_per_token
    from tfctl.model.sizes import count_params

    torch.manual_seed(0)
    x = torch.randint(0, config.vocab_size, (config.batch, config.seq_len), device=config.device)
    y = torch.randint(0, config.vocab_size, (config.batch, config.seq_len), device=config.device)
    dtypes = [
        d
        for d in config.dtypes
        if d == "fp32"
        or config.force_bf16
        or peaks[d]["flops_per_s"] >= BF16_USEFUL * peaks["fp32"]["flops_per_s"]
    ]
    cases, meta = {}, {}
    for family, model_config in model_configs(config).items():
        model = build_model(model_config).to(config.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        modes = {"eager": model}
        if config.compile:
            modes["compile"] = torch.compile(model)  # shares the parameters: one model, four step functions
        for mode, module in modes.items():
            for dtype in dtypes:
                name = f"{family} {mode} {dtype}"
                cases[name] = training_step(module, optimizer, x, y, dtype, config.device)
                meta[name] = {
                    "family": family,
                    "mode": mode,
                    "dtype": dtype,
                    "non_embedding_params": count_params(model_config, non_embedding=True),
                    "flops_per_token": training_flops_per_token(model_config, config.seq_len),
                }
    # the peak matmuls run in the same rounds as the steps: MFU divides two numbers measured under the same load
    matmuls = {f"peak {dtype}": (matmul, flops) for dtype, matmul, flops in peak_cases(config).values()}
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
    for row in rows:
        if row["family"] == "tokenformer":
            baseline = next(
                r
                for r in rows
                if r["family"] == "transformer" and r["mode"] == row["mode"] and r["dtype"] == row["dtype"]
            )
            row["vs_transformer"] = row["tokens_per_s"] / baseline["tokens_per_s"]
    skipped = [d for d in config.dtypes if d not in dtypes]
    for dtype in skipped:
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


class GeluMLP(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.up, self.down = nn.Linear(d, hidden, bias=False), nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


def bench_layers(config: BenchConfig) -> list[dict]:
    """Forward + backward of one layer on batch·seq tokens: Pattention vs the linear layer of the same size.

    Pattention(d, d, n) holds 2·n·d parameters and costs 6·2·n·d FLOPs per token, like nn.Linear(d, d) at
    n = d/2, and like a GeLU MLP of hidden width n (its structural twin: Θ in place of GeLU) at any n.
    """
    from tfctl.model import Pattention

    torch.manual_seed(0)
    d = config.d_model
    pairs = {  # name: (pattention, its equal-size linear counterpart)
        "d/2 tokens vs Linear(d, d)": (Pattention(d, d, d // 2), nn.Linear(d, d, bias=False)),
        "4d tokens vs GeLU MLP(4d)": (Pattention(d, d, 4 * d), GeluMLP(d, 4 * d)),
    }
    x = torch.randn(config.batch * config.seq_len, d, device=config.device, requires_grad=True)
    cases, meta = {}, {}
    for pair, modules in pairs.items():
        for kind, module in zip(("pattention", "linear"), modules, strict=True):
            module = module.to(config.device)
            params = sum(p.numel() for p in module.parameters())
            variants = {"eager": module, **({"compile": torch.compile(module)} if config.compile else {})}
            for mode, fn in variants.items():
                name = f"{pair}: {kind} {mode}"
                cases[name] = lambda fn=fn: fn(x).sum().backward()
                meta[name] = {
                    "pair": pair,
                    "kind": kind,
                    "mode": mode,
                    "params": params,
                    "flops": 6 * params * x.shape[0],
                }
    timed = interleaved_medians(cases, config.rounds, config.warmup, config.device)
    rows = [
        {"case": name, **info, **timed[name], "flops_per_s": info["flops"] / timed[name]["median_s"]}
        for name, info in meta.items()
    ]
    for row in rows:
        if row["kind"] == "pattention":
            twin = next(
                r
                for r in rows
                if r["pair"] == row["pair"] and r["mode"] == row["mode"] and r["kind"] == "linear"
            )
            row["time_vs_linear"] = row["median_s"] / twin["median_s"]
    return rows


def bench_growth() -> dict:
    from tfctl.bench.growth import benchmark_growth

    result = benchmark_growth("incremental-124m", "incremental-1.4b")  # grows in a fresh subprocess
    keep = (
        "source",
        "target",
        "total_seconds",
        "process_seconds",
        "import_seconds",
        "peak_rss_bytes",
        "grown_fp32_bytes",
        "rss_over_grown",
    )
    return {key: result[key] for key in keep if key in result}


def bench_data() -> dict:
    from tfctl.bench.data import benchmark_tokenization

    return benchmark_tokenization()


def profile_steps(config: BenchConfig, row_limit: int = 12) -> dict[str, list[dict]]:
    """The top ops (self CPU/device time) of two eager fp32 training steps of each family."""
    from torch.profiler import ProfilerActivity, profile

    from tfctl.model import build_model

    activities = [ProfilerActivity.CPU] + (
        [ProfilerActivity.CUDA] if config.device.startswith("cuda") else []
    )
    x = torch.randint(0, config.vocab_size, (config.batch, config.seq_len), device=config.device)
    tops = {}
    for family, model_config in model_configs(config).items():
        model = build_model(model_config).to(config.device)
        step = training_step(model, torch.optim.AdamW(model.parameters()), x, x, "fp32", config.device)
        step()
        with profile(activities=activities) as prof:
            step()
            step()
            synchronize(config.device)
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) or 1
        tops[family] = [
            {"op": e.key, "self_share": e.self_cpu_time_total / total, "calls": e.count}
            for e in events[:row_limit]
        ]
    return tops


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def run_suite(config: BenchConfig, say=print) -> dict:
    """Every section of the suite, in order; returns the results as one JSON-able dict."""
    started = time.perf_counter()
    results = {
        "config": dataclasses.asdict(config),
        "machine": machine(),
        "load_average_start": load_average(),
    }
    say("peak matmul ...")
    results["peaks"] = measure_peaks(config)
    if config.profile:
        say("profiling one eager step of each family ...")
        results["profile"] = profile_steps(config)
    say("training steps (tokenformer vs transformer, eager/compile, fp32/bf16) ...")
    results["training"] = bench_training(config, results["peaks"])
    if config.layers:
        say("pattention vs linear ...")
        results["layers"] = bench_layers(config)
    if config.growth:
        say("growth incremental-124m -> incremental-1.4b (fresh processes) ...")
        results["growth"] = bench_growth()
    if config.data:
        say("tokenization throughput ...")
        results["data"] = bench_data()
    results["load_average_end"] = load_average()
    results["seconds"] = time.perf_counter() - started
    return results
