"""The suite's results as a console table and as docs/benchmarks.md."""

GIB = 2**30


def _num(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if value is not None else "-"


def _ratio(row: dict, key: str) -> str:
    return f"{row[key]:.2f}x" if key in row else ""


def training_table(results: dict) -> list[list[str]]:
    rows = [
        [
            "case",
            "tokens/s",
            "step s (median, min-max)",
            "CPU s",
            "vs reference GPT",
            "vs reference GPT (CPU time)",
            "vs Transformer",
            "MFU",
            "compile/warm-up s",
        ]
    ]
    for r in results["training"]:
        if "skipped" in r:
            rows.append([r["case"], "skipped", r["skipped"], "", "", "", "", "", ""])
            continue
        rows.append(
            [
                r["case"],
                f"{r['tokens_per_s']:.1f}",
                f"{r['median_s']:.3f} ({r['min_s']:.3f}-{r['max_s']:.3f})",
                f"{r['cpu_median_s']:.3f}",
                _ratio(r, "vs_reference"),
                _ratio(r, "vs_reference_cpu"),
                _ratio(r, "vs_transformer"),
                f"{r['mfu']:.2f}",
                f"{r['first_call_s']:.1f}",
            ]
        )
    return rows


def layers_table(results: dict) -> list[list[str]]:
    rows = [["layer (fwd+bwd)", "params", "ms (median)", "GFLOP/s", "time vs linear"]]
    for r in results.get("layers", []):
        rows.append(
            [
                r["case"],
                f"{r['params']:,}",
                f"{1e3 * r['median_s']:.2f}",
                f"{r['flops_per_s'] / 1e9:.1f}",
                f"{r['time_vs_linear']:.2f}x" if "time_vs_linear" in r else "",
            ]
        )
    return rows


def growth_results(results: dict) -> list[dict]:
    """The growth rows: the default init (`growth`), then the exact option (`growth_preserve`), where timed.
    Results from before the default changed hold one row, grown with preserve."""
    return [results[key] for key in ("growth", "growth_preserve") if results.get(key)]


def other_table(results: dict) -> list[list[str]]:
    rows = [["measurement", "value"]]
    for dtype, peak in results["peaks"].items():
        rows.append(
            [f"peak matmul {dtype} ({peak['case']}, median)", f"{peak['flops_per_s'] / 1e9:.1f} GFLOP/s"]
        )
    for growth in growth_results(results):
        rows.append(
            [
                f"growth {growth['source']} -> {growth['target']}, init {growth.get('init', 'preserve')}: "
                "read + grow + write + verify",
                f"{growth['total_seconds']:.1f} s = {growth['read_seconds']:.1f} + {growth['grow_seconds']:.1f} + "
                f"{growth['write_seconds']:.1f} + {growth['verify_seconds']:.1f} s (the `tfctl grow` process {growth['process_seconds']:.1f} s; "
                f"CPU user {growth['cpu_user_seconds']:.1f} s, system {growth['cpu_system_seconds']:.1f} s)",
            ]
        )
        every = ", ".join(f"{seconds:.1f}" for seconds in growth["raw_write_seconds_all"])
        rows.append(
            [
                f"raw write of the same {growth['file_bytes'] / GIB:.2f} GiB with fsync (best of: before, after)",
                f"{growth['raw_write_seconds']:.1f} s (of {every}); the `tfctl grow` process = "
                f"{growth['over_raw_write']:.2f}x of it",
            ]
        )
        if "raw_direct_write_seconds" in growth:
            every = ", ".join(f"{seconds:.1f}" for seconds in growth["raw_direct_write_seconds_all"])
            rows.append(
                [
                    "the same with O_DIRECT (the disk's floor; `tfctl grow` writes so, zero runs as holes: "
                    f"{growth['file_disk_bytes'] / GIB:.2f} GiB on the disk)",
                    f"{growth['raw_direct_write_seconds']:.1f} s (of {every}); the `tfctl grow` process = "
                    f"{growth['over_raw_direct_write']:.2f}x of it",
                ]
            )
        rows.append(
            [
                f"growth peak RSS, minor page faults (init {growth.get('init', 'preserve')})",
                f"{growth['peak_rss_bytes'] / GIB:.2f} GiB = {growth['rss_over_grown']:.2f}x the grown fp32 size "
                f"({growth['grown_fp32_bytes'] / GIB:.2f} GiB); {growth['minor_page_faults']:,} faults",
            ]
        )
    data = results.get("data")
    if data:
        for row in data["workers"].values():
            rows.append(
                [
                    f"tokenization {data['source']} {data['tokenizer']}, {row['workers']} worker(s)",
                    f"{row['mb_per_s']:.2f} MB/s ({row['speedup']:.2f}x), {row['mb_per_cpu_s']:.2f} MB per CPU-second "
                    f"({data['bytes'] / 1e6:.1f} MB in {row['seconds']} s, CPU {row['cpu_seconds']} s)",
                ]
            )
    startup = results.get("startup")
    rows.append(
        [
            "one 1-rank CPU stage: worker start -> first optimizer step",
            startup_summary(startup) if startup else "not measured by this suite (see Notes)",
        ]
    )
    return rows


def startup_summary(startup: dict) -> str:
    """The start-up figure with its CPU time (what it costs on a loaded machine) and where it goes."""
    text = f"{startup['seconds']:.1f} s"
    if "to_first_step_cpu_s" in startup:
        text += f" ({startup['to_first_step_cpu_s']:.1f} s CPU)"
    text += f", median of {len(startup['runs'])} launches"
    phases = startup.get("phases")
    if phases:
        text += "; phases (CPU s): " + ", ".join(f"{p['phase']} {p['cpu_s']:.2f}" for p in phases)
    return text


def targets(results: dict) -> list[list[str]]:
    """The issue's targets, each with the measured figure and whether it is met."""
    rows = [["target", "measured", "met"]]
    for r in results["training"]:
        if "vs_reference" in r and r["mode"] == "eager":
            both = f"{r['vs_reference']:.2f}x wall, {r['vs_reference_cpu']:.2f}x CPU time"
            met = r["vs_reference"] >= 1.0 and r["vs_reference_cpu"] >= 1.0
            rows.append([f"{r['case']} >= 1.0x the reference GPT's tokens/s", both, "yes" if met else "no"])
    for growth in growth_results(results):
        rows.append(
            [
                f"`tfctl grow` 124M -> 1.4B, init {growth.get('init', 'preserve')} (whole process) <= 2x the best "
                "raw write of the same bytes with fsync",
                f"{growth['over_raw_write']:.2f}x ({growth['process_seconds']:.1f} s vs {growth['raw_write_seconds']:.1f} s)",
                "yes" if growth["over_raw_write"] <= 2.0 else "no",
            ]
        )
        rows.append(
            [
                f"growth peak RSS, init {growth.get('init', 'preserve')}, <= 1.2x the grown fp32 size",
                f"{growth['rss_over_grown']:.2f}x",
                "yes" if growth["rss_over_grown"] <= 1.2 else "no",
            ]
        )
    data = results.get("data")
    if data and "2" in data["workers"]:
        speedup = data["workers"]["2"]["speedup"]
        rows.append(
            [
                "tokenization with 2 workers >= 1.8x 1 worker (wall)",
                f"{speedup:.2f}x",
                "yes" if speedup >= 1.8 else "no",
            ]
        )
    startup, measured, met = results.get("startup"), "not measured here", "-"
    if startup:  # wall-clock, as the target is; the load average says how far other processes moved it
        measured, met = f"{startup['seconds']:.1f} s", "yes" if startup["seconds"] <= 3 else "no"
        if "load_average" in startup:
            measured += (
                f" (CPU {startup['to_first_step_cpu_s']:.1f} s, load average {startup['load_average'][0]})"
            )
    rows.append(["1-rank CPU stage start -> first optimizer step <= 3 s", measured, met])
    if step_overhead_target(results):
        rows.append(step_overhead_target(results))
    return rows


def step_overhead_table(results: dict) -> list[list[str]]:
    rows = [
        ["recipe, stage", "model", "threads", "worker ms", "bare loop ms", "worker / bare", "CPU time ratio"]
    ]
    for r in results.get("step_overhead", []):
        rows.append(
            [
                f"{r['recipe']} {r['stage']}",
                f"{r['shape']}, {r['param_tokens']} qkv tokens, vocab {r['vocab_size']}",
                str(r["threads"]),
                f"{1e3 * r['worker_s']:.1f}",
                f"{1e3 * r['bare_s']:.1f}",
                f"{r['ratio']:.2f}x",
                f"{r['ratio_cpu']:.2f}x",
            ]
        )
    return rows


def step_overhead_target(results: dict) -> list[str] | None:
    rows = results.get("step_overhead")
    if not rows:
        return None
    from tfctl.bench.step_overhead import TARGET

    worst = max(rows, key=lambda r: r["ratio"])
    return [
        f"the worker's median step <= {TARGET}x a bare loop's (demo and study shapes, 1 and 2 threads)",
        f"worst {worst['ratio']:.2f}x ({worst['recipe']} {worst['stage']}, {worst['threads']} threads)",
        "yes" if worst["ratio"] <= TARGET else "no",
    ]


def render(rows: list[list[str]]) -> str:
    """A GitHub markdown table (also readable on a console)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def console(results: dict) -> str:
    parts = [render(training_table(results)), render(other_table(results))]
    if results.get("layers"):
        parts.insert(1, render(layers_table(results)))
    if results.get("step_overhead"):
        parts.append(render(step_overhead_table(results)))
    if len(targets(results)) > 1:
        parts.append(render(targets(results)))
    return "\n\n".join(parts)


def markdown(results: dict, command: str, notes: str = "") -> str:
    config, machine = results["config"], results["machine"]
    described = ", ".join(f"{key} {value}" for key, value in machine.items())
    lines = [
        "# Benchmarks",
        "",
        "Generated by `tfctl.bench` (do not edit by hand; rerun the command). Every figure below comes from ONE",
        "run of one process: the cases run round-robin, so load from other processes slows them alike and the",
        "ratios hold even where the absolute numbers are noisy. Medians of the timed rounds.",
        "",
        f"- command: `{command}`",
        f"- machine: {described}",
        f"- load average (1, 5, 15 min) at start {results['load_average_start']}, at end "
        f"{results['load_average_end']}; suite took {results['seconds']:.0f} s",
        f"- model shape: d_model {config['d_model']}, {config['n_layers']} layers, {config['n_heads']} heads, "
        f"seq {config['seq_len']}, batch {config['batch']}, vocab {config['vocab_size']}; the reference GPT "
        "(tfctl/bench/reference_gpt.py: nanoGPT's shape, learned positions, LayerNorm with weight, fused QKV "
        "Linear, GeLU MLP 4d, tied head, SDPA) sets the non-embedding parameter count; the Tokenformer's tokens "
        "(qkv : proj : ffn = 1 : 1 : 4) and the Transformer's MLP width (rounded to a multiple of 64) are solved "
        "to it",
        "- a training step is forward + backward + torch AdamW on one process (no DeepSpeed); bf16 = autocast "
        "(fp32 weights, bf16 matmuls); `compile` = torch.compile of the whole model (first-call time includes "
        "compilation)",
        "- `vs reference GPT` = its tokens/s over the reference's (wall-clock medians); the CPU-time column "
        "divides the medians of process CPU time instead, which other processes on a shared machine disturb less",
        "- MFU = analytic training FLOPs/token (tfctl.model.flops: 6N + attention) x tokens/s / the median "
        "square-matmul FLOP/s of the same dtype, timed in the same rounds as the steps",
        "",
        "## Training step",
        "",
        render(training_table(results)),
        "",
    ]
    if results.get("layers"):
        lines += [
            "## One Pattention layer vs a linear layer of the same parameter count",
            "",
            render(layers_table(results)),
            "",
        ]
    lines += ["## Peak matmul, growth, data preparation", "", render(other_table(results)), ""]
    if results.get("step_overhead"):
        lines += [
            "## The worker's training step vs a bare loop",
            "",
            "`StageTrainer.run_step` of a 1-rank CPU stage (DeepSpeed engine, sampler, LR setter, records) against "
            "`model(x, y); loss.backward(); clip; AdamW.step()` on the same model, batches and optimizer settings "
            "(tfctl/bench/step_overhead.py), every case round-robin in one process; medians of "
            f"{results['step_overhead'][0]['rounds']} rounds.",
            "",
            render(step_overhead_table(results)),
            "",
        ]
    if len(targets(results)) > 1:
        lines += ["## Targets", "", render(targets(results)), ""]
    if results.get("profile"):
        lines += ["## Profile: top ops of two eager fp32 steps (share of self CPU time)", ""]
        for family, ops in results["profile"].items():
            lines.append(
                f"- {family}: " + ", ".join(f"{op['op']} {100 * op['self_share']:.0f}%" for op in ops)
            )
        lines.append("")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)
