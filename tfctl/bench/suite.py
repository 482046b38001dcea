"""The benchmark suite: every measurement in one process, one run, so the ratios between them hold.

Sections: (1) training-step tokens/s of the Tokenformer and the baseline Transformer against a plain reference
GPT at matched non-embedding parameters, eager and torch.compile, fp32 and bf16 (training.py); (2) MFU against
the matmul peak measured in the same run;
(3) one Pattention layer vs an nn.Linear / GeLU MLP of the same parameter count; (4) growth 124M → 1.4B time and
peak RSS (in fresh processes); (5) data-preparation (tokenization) MB/s; (6) stage start-up; (7) the worker's
training step against a bare torch loop (step_overhead.py).
"""

import dataclasses
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from tfctl.bench.measure import interleaved_medians, matmul_case
from tfctl.bench.training import bench_training, profile_steps

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# bf16 model steps are skipped when bf16 matmuls run below this fraction of fp32 (a CPU without native bf16
# emulates it ~100x slower: a step would take minutes and say nothing about the model).
BF16_USEFUL = 0.25


@dataclasses.dataclass
class BenchConfig:
    device: str = "cpu"
    d_model: int = 384
    n_layers: int = 6
    n_heads: int = 6
    seq_len: int = 256
    batch: int = 4  # sequences per training step
    vocab_size: int = 8192
    rounds: int = 5  # timed calls per case, round-robin over the cases
    warmup: int = 2
    compile: bool = True
    dtypes: tuple[str, ...] = ("fp32", "bf16")
    force_bf16: bool = False  # run bf16 model steps even where bf16 matmuls are slow
    layers: bool = True
    growth: bool = True
    data: bool = True
    startup: bool = True  # one 1-rank CPU stage, launch to first optimizer step (tfctl.bench.startup)
    step_overhead: bool = True  # the worker's step vs a bare loop at the demo's and study's shapes
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
            startup=False,
            step_overhead=False,
        )
        return cls(**{**values, **overrides})


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


def useful_dtypes(config: BenchConfig, peaks: dict) -> list[str]:
    """The dtypes whose training steps run: fp32, and bf16 where its matmuls are not emulated."""
    return [
        d
        for d in config.dtypes
        if d == "fp32"
        or config.force_bf16
        or peaks[d]["flops_per_s"] >= BF16_USEFUL * peaks["fp32"]["flops_per_s"]
    ]


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


GROWTH_INITS = {"growth": "paper", "growth_preserve": "preserve"}  # results key -> `tfctl grow --init`


def bench_growth(init: str = "paper") -> dict:
    from tfctl.bench.growth import benchmark_growth

    result = benchmark_growth("incremental-124m", "incremental-1.4b", init)  # grows in a fresh subprocess
    keep = (
        "source",
        "target",
        "total_seconds",
        "read_seconds",
        "grow_seconds",
        "write_seconds",
        "verify_seconds",
        "checked_bytes",
        "process_seconds",
        "import_seconds",
        "peak_rss_bytes",
        "grown_fp32_bytes",
        "file_bytes",
        "file_disk_bytes",
        "rss_over_grown",
        "minor_page_faults",
        "cpu_user_seconds",
        "cpu_system_seconds",
        "raw_write_seconds",
        "raw_write_seconds_all",
        "in_process_seconds",
        "over_raw_write",
        "raw_direct_write_seconds",
        "raw_direct_write_seconds_all",
        "over_raw_direct_write",
    )
    return {key: result[key] for key in keep if key in result} | {"init": init}


def bench_startup(repeats: int = 3) -> dict:
    """Launch → first optimizer step of a 1-rank CPU stage (`seconds`, the target's figure), its CPU time,
    the phases of the worker's start, and the load average it was measured under."""
    from tfctl.bench.startup import stage_startup

    measured = stage_startup(repeats)
    return {"seconds": measured["to_first_step_s"], **measured}


def bench_step_overhead() -> list[dict]:
    from tfctl.bench.step_overhead import measure_as_launched

    return measure_as_launched()  # a fresh process: OpenMP's wait policy as tfctl train sets it for a stage


def bench_data() -> dict:
    from tfctl.bench.data import benchmark_tokenization

    return benchmark_tokenization()


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
    say("training steps (reference GPT, tokenformer, transformer; eager/compile, fp32/bf16) ...")
    results["training"] = bench_training(
        config, results["peaks"], peak_cases(config), useful_dtypes(config, results["peaks"])
    )
    if config.layers:
        say("pattention vs linear ...")
        results["layers"] = bench_layers(config)
    if config.growth:
        for key, init in GROWTH_INITS.items():  # the default (random new tokens) and the exact option (zeros)
            say(f"growth incremental-124m -> incremental-1.4b, init {init} (fresh processes) ...")
            results[key] = bench_growth(init)
    if config.data:
        say("tokenization throughput ...")
        results["data"] = bench_data()
    if config.startup:
        say("stage start-up (1 rank, CPU) ...")
        results["startup"] = bench_startup()
    if config.step_overhead:
        say("the worker's step vs a bare loop (demo and study shapes, 1 and 2 threads) ...")
        results["step_overhead"] = bench_step_overhead()
    results["load_average_end"] = load_average()
    results["seconds"] = time.perf_counter() - started
    return results
