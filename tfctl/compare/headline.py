"""The headline of a comparison, final against final: did growth save compute, per reference. Pure Python.

Only finished runs count (every planned stage done, so their LR has decayed): the growth run's final stage end
against the reference's final eval, and against the from-scratch frontier of the reference's architecture
(the lower convex hull of its finished runs, every size and budget: tfctl.compare.frontier). A mid-schedule
eval never enters a headline.

Each run's perplexity is exp(mean loss over its finished seeds) (tfctl.compare.seeds). Three numbers answer
the question: the perplexity gap to the reference, the frontier-FLOPs ratio (the growth run's FLOPs over those
the frontier needs for its perplexity) and the iso-FLOP gap (the growth run's perplexity against the
frontier's at the same FLOPs). Each gets a 90 % interval from a bootstrap over every run's seeds
(tfctl.compare.bootstrap), and the verdict comes from the interval.
"""

import math

from tfctl.compare.bootstrap import bootstrap, interval
from tfctl.compare.frontier import AT_LEAST, AT_MOST, Point, Reading, hull, read_flops, read_ppl
from tfctl.compare.runs import RunGroup, RunSummary
from tfctl.compare.seeds import mean_std, outliers, seed_ppl

SAVES, COSTS, INCONCLUSIVE = "saves compute", "costs compute", "inconclusive"
FLIP = {AT_MOST: AT_LEAST, AT_LEAST: AT_MOST, None: None}  # the bound of 1/x (or of a gap) from x's
INTERVAL_KEYS = ("ppl_gap_pct", "frontier_flops_ratio", "iso_flops_ppl", "iso_flops_ppl_gap_pct")
READ_KEYS = (
    "ppl_gap_pct",
    "frontier_flops",
    "frontier_flops_ratio",
    "iso_flops_ppl",
    "iso_flops_ppl_gap_pct",
)


def losses(runs: list[RunSummary]) -> list[float]:
    """Final losses as log-perplexity (the number every perplexity here is exp of)."""
    return [math.log(r.val_ppl) for r in runs]


def family_points(groups: list[RunGroup]) -> list[Point]:
    """One point per family member (a size at a budget): mean FLOPs, exp(mean loss) over finished seeds."""
    return [
        Point(
            flops=mean_std([r.flops for r in g.finished])[0],
            ppl=seed_ppl(losses(g.finished))[0],
            label=g.label,
        )
        for g in groups
        if g.finished
    ]


def estimates(growth_loss: float, flops: float, reference_loss: float, members: list[Point]) -> dict:
    """The headline numbers from mean losses: name → Reading (a bound where read off the frontier out of
    range); the frontier numbers only with a frontier (two members or more)."""
    ppl = math.exp(growth_loss)
    out = {"ppl_gap_pct": Reading((ppl / math.exp(reference_loss) - 1) * 100)}
    front = hull(members) if len(members) > 1 else []
    if front:
        needed, iso = read_flops(front, ppl), read_ppl(front, flops)
        out["frontier_flops"] = needed
        out["frontier_flops_ratio"] = Reading(flops / needed.value, FLIP[needed.bound])
        out["iso_flops_ppl"] = iso
        out["iso_flops_ppl_gap_pct"] = Reading((ppl / iso.value - 1) * 100, FLIP[iso.bound])
    return out


def _censored(reading: Reading) -> float:
    """A draw's value for the percentiles: a bound is ±inf (the value lies somewhere beyond it)."""
    return {None: reading.value, AT_MOST: -math.inf, AT_LEAST: math.inf}[reading.bound]


def headline(main: RunGroup, reference: RunGroup, family: list[RunGroup]) -> dict:
    """`main` (the growth run) against `reference`; `family`: the groups of the reference's architecture
    whose frontier is used ([] for none)."""
    growth, against = main.finished, reference.finished
    members = [g for g in family if g.finished]
    counts = [len(growth), len(against), *(len(g.finished) for g in members)]
    out: dict = {
        "run": main.label,
        "against": reference.runs[0].name if reference.runs else reference.label,
        "against_label": reference.label,
        "against_kind": reference.kind,
        "family": [g.label for g in members],
        "n_seeds": min(counts) if growth and against else 0,
        "seeds_growth": [r.seed for r in growth],
        "seeds_reference": [r.seed for r in against],
    }
    for key in READ_KEYS:  # every reference has every key: null where there is nothing to read
        out[key] = out[f"{key}_bound"] = None
    for key in INTERVAL_KEYS:
        out[f"{key}_ci"] = None
    if not out["n_seeds"]:
        return {**out, "verdict": INCONCLUSIVE, "frontier": []}
    (ppl, ppl_median), (ref_ppl, ref_median) = seed_ppl(losses(growth)), seed_ppl(losses(against))
    flops, ref_flops = mean_std([r.flops for r in growth])[0], mean_std([r.flops for r in against])[0]
    hours, ref_hours = (
        mean_std([r.device_hours for r in growth])[0],
        mean_std([r.device_hours for r in against])[0],
    )
    points = family_points(members)
    out.update(
        {
            "ppl_growth": ppl,
            "ppl_growth_median": ppl_median,
            "ppl_reference": ref_ppl,
            "ppl_reference_median": ref_median,
            "flops_growth": flops,
            "flops_reference": ref_flops,
            "flops_ratio": flops / ref_flops if ref_flops else None,
            "device_hours_growth": hours,
            "device_hours_reference": ref_hours,
            "device_hours_ratio": hours / ref_hours if ref_hours else None,
            "frontier": [{"label": p.label, "flops": p.flops, "ppl": p.ppl} for p in hull(points)]
            if len(points) > 1
            else [],
        }
    )
    point = estimates(math.log(ppl), flops, math.log(ref_ppl), points)
    for key, reading in point.items():
        out[key], out[f"{key}_bound"] = reading.value, reading.bound
    if out["n_seeds"] > 1:  # one seed has no spread: an interval of zero width would claim certainty
        samples = [losses(growth), losses(against), *(losses(g.finished) for g in members)]

        def statistic(means: list[float]) -> dict:
            drawn = [Point(p.flops, math.exp(m), p.label) for p, m in zip(points, means[2:], strict=True)]
            return {k: _censored(r) for k, r in estimates(means[0], flops, means[1], drawn).items()}

        draws = bootstrap(statistic, samples)
        for key in INTERVAL_KEYS:
            if key in draws:
                out[f"{key}_ci"] = interval(draws[key])
    out["verdict"] = compute_verdict(out)
    return out


def compute_verdict(h: dict) -> str:
    """From the 90 % intervals. With a frontier: the frontier-FLOPs ratio's interval entirely below 1 saves
    compute, entirely above 1 costs compute. Without one: fewer FLOPs than the reference with a perplexity gap
    entirely below 0 saves compute; more FLOPs with a gap entirely above 0 costs compute. Otherwise (or with
    one seed: no interval) inconclusive."""
    if h.get("frontier"):
        ci = h.get("frontier_flops_ratio_ci")
        if ci is None:
            return INCONCLUSIVE
        if ci[1] is not None and ci[1] < 1:
            return SAVES
        return COSTS if ci[0] is not None and ci[0] > 1 else INCONCLUSIVE
    ci, ratio = h.get("ppl_gap_pct_ci"), h.get("flops_ratio")
    if ci is None or ratio is None:
        return INCONCLUSIVE
    if ratio <= 1 and ci[1] is not None and ci[1] < 0:
        return SAVES
    return COSTS if ratio >= 1 and ci[0] is not None and ci[0] > 0 else INCONCLUSIVE


def flagged_seeds(group: RunGroup) -> list[int | None]:
    """The seeds of `group` whose final loss is an outlier among its finished seeds (flagged, kept)."""
    runs = group.finished
    return [runs[i].seed for i in outliers(losses(runs))]


def stage_ends(main: RunGroup, families: dict[str, list[RunGroup]]) -> list[dict]:
    """Each stage end of the growth run (exp of the mean loss over its seeds) against each family's frontier."""
    by_stage: dict[str, list[dict]] = {}
    for run in main.runs:  # a stage end is a finished point even while later stages train
        for end in run.stage_ends:
            by_stage.setdefault(end["stage"], []).append(end)
    fronts = {name: hull(family_points(groups)) for name, groups in families.items()}
    rows = []
    for stage, ends in by_stage.items():
        flops, _ = mean_std([e["flops"] for e in ends])
        ppl, _ = seed_ppl([math.log(e["val_ppl"]) for e in ends])
        _, ppl_std = mean_std([e["val_ppl"] for e in ends])
        hours, _ = mean_std([e["device_hours"] for e in ends])
        ratios, bounds = {}, {}
        for name, front in fronts.items():
            needed = read_flops(front, ppl)
            ratios[name] = flops / needed.value if needed else None
            bounds[name] = FLIP[needed.bound] if needed else None
        rows.append(
            {
                "stage": stage,
                "n_seeds": len(ends),
                "flops": flops,
                "val_ppl": ppl,
                "val_ppl_std": ppl_std,
                "device_hours": hours,
                "frontier_flops_ratio": ratios,
                "frontier_flops_ratio_bound": bounds,
            }
        )
    return rows
