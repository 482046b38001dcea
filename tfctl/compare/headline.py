"""The headline of a comparison, final against final: what growth saved, per reference. Pure Python.

Only finished runs count (every planned stage done, so their LR has decayed): the growth run's final stage end
against the reference's final eval, and the from-scratch frontier of the reference's family (its finished
members' final evals, tfctl.compare.frontier) at the growth run's final perplexity. A mid-schedule eval never
enters a headline. With several seeds each number is computed per seed (growth seed k against reference seed
k) and reported as mean and sample std over the seeds both have finished.
"""

from tfctl.compare.frontier import Point, frontier_flops
from tfctl.compare.runs import RunGroup, RunSummary
from tfctl.compare.seeds import NOISE_MULTIPLE, mean_std, within_noise

HEADLINE_KEYS = (
    "ppl_growth",
    "ppl_reference",
    "ppl_gap_pct",
    "flops_growth",
    "flops_reference",
    "flops_ratio",
    "device_hours_growth",
    "device_hours_reference",
    "device_hours_ratio",
    "frontier_flops",
    "frontier_flops_ratio",
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def family_points(groups: list[RunGroup]) -> list[Point]:
    """One point per family member: its finished seeds' mean FLOPs and mean final perplexity."""
    points = []
    for group in groups:
        runs = group.finished
        if runs:
            flops, _ = mean_std([r.flops for r in runs])
            ppl, _ = mean_std([r.val_ppl for r in runs])
            points.append(Point(flops=flops, ppl=ppl, label=group.label))
    return points


def seed_numbers(growth: RunSummary, reference: RunSummary, frontier: list[Point]) -> dict:
    """The headline numbers of one seed."""
    needed = frontier_flops(frontier, growth.val_ppl) if frontier else None
    return {
        "seed": growth.seed,
        "ppl_growth": growth.val_ppl,
        "ppl_reference": reference.val_ppl,
        "ppl_gap_pct": (growth.val_ppl / reference.val_ppl - 1) * 100,
        "flops_growth": growth.flops,
        "flops_reference": reference.flops,
        "flops_ratio": _ratio(growth.flops, reference.flops),
        "device_hours_growth": growth.device_hours,
        "device_hours_reference": reference.device_hours,
        "device_hours_ratio": _ratio(growth.device_hours, reference.device_hours),
        "frontier_flops": needed,
        "frontier_flops_ratio": _ratio(growth.flops, needed),
    }


def headline(main: RunGroup, reference: RunGroup, family: list[RunGroup]) -> dict:
    """`main` (the growth run) against `reference`; `family`: the groups whose frontier is used (the
    reference's from-scratch family; [] for none)."""
    growth = {r.seed: r for r in main.finished}
    against = {r.seed: r for r in reference.finished}
    seeds = sorted(set(growth) & set(against), key=lambda s: (s is None, s))
    frontier = family_points(family)
    per_seed = [seed_numbers(growth[s], against[s], frontier) for s in seeds]
    out: dict = {
        "run": main.label,
        "against": reference.runs[0].name if reference.runs else reference.label,
        "against_label": reference.label,
        "against_kind": reference.kind,
        "family": [p.label for p in frontier],
        "n_seeds": len(per_seed),
        "seeds": seeds,
    }
    spread = {}
    for key in HEADLINE_KEYS:
        out[key], spread[key] = mean_std([row[key] for row in per_seed])
    out["std"] = spread
    out["frontier_in_range"] = sum(row["frontier_flops"] is not None for row in per_seed)
    out["within_noise"] = within_noise(
        [row["ppl_growth"] for row in per_seed], [row["ppl_reference"] for row in per_seed]
    )
    out["per_seed"] = per_seed
    return out


def flops_wording(ratio: float | None) -> str:
    """0.69 → "0.69× the FLOPs (1.46× fewer)", 1.001 → "the same FLOPs (1.00×)", 1.3 → "1.30× the FLOPs"."""
    if ratio is None:
        return "FLOPs ratio —"
    if round(ratio, 2) == 1.0:
        return "the same FLOPs (1.00×)"
    if ratio < 1:
        return f"{ratio:.2f}× the FLOPs ({1 / ratio:.2f}× fewer)"
    return f"{ratio:.2f}× the FLOPs"


def verdict(h: dict) -> str:
    """One sentence a user can act on."""
    if not h["n_seeds"]:
        return f"{h['run']} vs {h['against_label']}: no finished pair of runs yet, no headline"
    gap = h["ppl_gap_pct"]
    if h["within_noise"] is None:
        quality = f"perplexity {gap:+.1f} % (one seed: noise unknown)"
    elif h["within_noise"]:
        quality = f"perplexity {gap:+.1f} %, within noise (< {NOISE_MULTIPLE:g}× the seed spread)"
    else:
        quality = f"perplexity {gap:+.1f} %, beyond noise"
    cost = flops_wording(h["flops_ratio"])
    hours = (
        f"{h['device_hours_ratio']:.2f}× the device-hours" if h["device_hours_ratio"] else "device-hours —"
    )
    ratio = h["frontier_flops_ratio"]
    if ratio is not None:
        frontier = f"; {ratio:.2f}× the FLOPs the from-scratch frontier needs for the same perplexity"
        frontier += " (growth saves compute)" if ratio < 1 else " (growth does not beat the frontier)"
    elif len(h["family"]) > 1:
        frontier = (
            "; the growth run's perplexity is outside the from-scratch family's range (no frontier ratio)"
        )
    else:
        frontier = ""
    return (
        f"{h['run']} vs {h['against_label']} ({h['n_seeds']} seed(s)): {quality}; {cost}, {hours}{frontier}"
    )


def stage_ends(main: RunGroup, families: dict[str, list[RunGroup]]) -> list[dict]:
    """Each stage end of the growth run (mean over its finished seeds) against each family's frontier."""
    by_stage: dict[str, list[dict]] = {}
    for run in main.runs:  # a stage end is a finished point even while later stages train
        for end in run.stage_ends:
            by_stage.setdefault(end["stage"], []).append(end)
    fronts = {name: family_points(groups) for name, groups in families.items()}
    rows = []
    for stage, ends in by_stage.items():
        flops, _ = mean_std([e["flops"] for e in ends])
        ppl, ppl_std = mean_std([e["val_ppl"] for e in ends])
        hours, _ = mean_std([e["device_hours"] for e in ends])
        ratios = {}
        for name, points in fronts.items():
            needed = frontier_flops(points, ppl) if len(points) > 1 else None
            ratios[name] = _ratio(flops, needed)
        rows.append(
            {
                "stage": stage,
                "n_seeds": len(ends),
                "flops": flops,
                "val_ppl": ppl,
                "val_ppl_std": ppl_std,
                "device_hours": hours,
                "frontier_flops_ratio": ratios,
            }
        )
    return rows
