"""Mid-schedule races: the cumulative FLOPs at which each seed of each run first reaches a perplexity. Points
inside a schedule (before the LR decayed): shapes of the curves, never a headline number. Pure Python."""

from tfctl.compare.curves import flops_to_reach, speedup
from tfctl.compare.runs import RunGroup, RunSummary
from tfctl.compare.seeds import mean_std

RELATIVE_TARGETS = (1.5, 1.25, 1.1)  # × the reference's final perplexity: easier targets on the way there
MID_SCHEDULE = (
    "Mid-schedule: the cumulative FLOPs at which each run's eval curve first reaches a perplexity (linear "
    "between evals; the mean over its seeds, — unless every seed got there). A point inside a schedule, "
    "before its LR decayed, is not where a run of that budget ends: these races are not headline numbers."
)


def target_list(
    main: RunSummary, reference: RunSummary | None, fixed: list[float], name: str = ""
) -> list[dict]:
    """The perplexities to race to: the reference's final one first, then the growth run's final, a few
    easier multiples of the reference's, and the user's fixed targets; duplicates dropped."""
    targets = [(main.val_ppl, f"final of {main.name}")]
    if reference is not None:
        name = name or reference.name
        targets.insert(0, (reference.val_ppl, f"final of {name}"))
        targets += [(reference.val_ppl * m, f"{m:g}× final of {name}") for m in RELATIVE_TARGETS]
    targets += [(float(p), "fixed") for p in fixed]
    seen, out = set(), []
    for ppl, what in targets:
        if round(ppl, 6) not in seen:
            seen.add(round(ppl, 6))
            out.append({"ppl": ppl, "label": what})
    return out


def races(raced: list[RunGroup], reference: RunGroup | None, targets: list[dict]) -> list[dict]:
    """Per target: the FLOPs at which every seed of every raced run first reaches it (`flops`, by run name),
    per run the mean over its seeds (None unless every seed got there) and the reference's over it."""
    out = []
    for target in targets:
        reached = {
            r.name: flops_to_reach(r.curve.flops, r.curve.ppl, target["ppl"]) for g in raced for r in g.runs
        }
        means = {}
        for group in raced:
            values = [reached[r.name] for r in group.runs]
            means[group.label] = mean_std(values)[0] if values else None
        base = means.get(reference.label) if reference is not None else None
        ratios = {name: speedup(base, value) for name, value in means.items()} if reference else {}
        out.append({**target, "flops": reached, "group_flops": means, "speedup": ratios})
    return out
