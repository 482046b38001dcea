"""Figure 3 of the paper, for this run: validation perplexity against cumulative training FLOPs, and against
device-hours (the paper's axis is TPU-hours).

One line per run (the mean over its seeds, with the seeds' min–max as a band), growth points marked ◆; the
growth run's stage ends and the finished from-scratch runs' final evals (the points headlines use, exp of the
mean loss over seeds) marked larger; per architecture its frontier, exactly the hull the headline reads
(tfctl.compare.frontier), dashed with its vertices boxed □; the headline sentences under the panels.
"""

import math
from pathlib import Path

from tfctl.compare.frontier import hull
from tfctl.compare.headline import family_points
from tfctl.compare.runs import RunGroup, RunSummary

AXES = (("flops", "cumulative training FLOPs"), ("device_hours", "device-hours (wall × ranks)"))
GROWTH_LABEL = "growth (a new stage starts)"


def _curve(run: RunSummary, axis: str) -> list[float]:
    return run.curve.flops if axis == "flops" else run.curve.device_hours


def _mean_curve(
    runs: list[RunSummary], axis: str
) -> tuple[list[float], list[float], list[float], list[float]]:
    """x, mean, min, max over the seeds, on the evals all seeds have (the shortest curve)."""
    length = min(min(len(r.curve.ppl), len(_curve(r, axis))) for r in runs)
    xs, mean, low, high = [], [], [], []
    for i in range(length):
        x = sum(_curve(r, axis)[i] for r in runs) / len(runs)
        values = [r.curve.ppl[i] for r in runs]
        if x > 0 and all(r.curve.flops[i] > 0 for r in runs):  # the eval before any training: left off
            xs.append(x)
            mean.append(sum(values) / len(values))
            low.append(min(values))
            high.append(max(values))
    return xs, mean, low, high


def _finals(group: RunGroup, axis: str) -> list[tuple[float, float]]:
    """The headline points: a finished run's stage ends (growth) or final eval (baselines), seed means."""
    runs = group.finished
    if not runs:
        return []
    key = "flops" if axis == "flops" else "device_hours"
    stages = [e["stage"] for e in runs[0].stage_ends]
    points = []
    for stage in stages if group.kind == "growth" else stages[-1:]:
        ends = [e for r in runs for e in r.stage_ends if e["stage"] == stage]
        loss = sum(math.log(e["val_ppl"]) for e in ends) / len(ends)
        points.append((sum(e[key] for e in ends) / len(ends), math.exp(loss)))
    return points


def _ppl_at(xs: list[float], ppl: list[float], x: float) -> float:
    """The perplexity of the last eval at or before `x` (growth happens right after an eval)."""
    return [p for at, p in zip(xs, ppl, strict=True) if at <= x][-1]


LEGEND_INSIDE = 8  # entries a legend may have inside the FLOPs panel


def plot_ppl_vs_flops(
    runs: list[RunSummary | RunGroup],
    path: str | Path,
    title: str | None = None,
    frontiers: dict[str, list[RunGroup]] | None = None,
    caption: list[str] | None = None,
) -> dict:
    """Two panels (FLOPs, device-hours), log-x; `frontiers`: each architecture's from-scratch runs (its hull
    is drawn on the FLOPs panel), `caption`: lines under the panels (the headline). Writes a PNG; returns what
    was drawn on the FLOPs panel: {"lines": [{"label", "points", "seeds"}] per line, "frontiers":
    {architecture: [[flops, ppl], ...] hull vertices}, "legend": [label, ...], "caption": [line, ...]}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    groups = [r if isinstance(r, RunGroup) else RunGroup(label=r.name, kind=r.kind, runs=[r]) for r in runs]
    caption = list(caption or [])
    height = 4.8 + 0.3 * len(caption)  # a headline sentence wraps to about two lines at this size
    figure, panels = plt.subplots(1, 2, figsize=(13, height), dpi=120)
    drawn, marked, hulls = [], False, {}
    try:
        for axes, (axis, xlabel) in zip(panels, AXES, strict=True):
            if len(groups) > 10:  # the default cycle repeats after 10 colours
                axes.set_prop_cycle(color=plt.get_cmap("tab20").colors)
            for group in groups:
                if not group.runs:
                    continue
                runs = group.finished or group.runs  # a seed still training would cut the curves short
                xs, mean, low, high = _mean_curve(runs, axis)
                seeds = len(runs)
                name = f"{group.label} ({group.kind}" + (f", {seeds} seeds)" if seeds > 1 else ")")
                (line,) = axes.plot(xs, mean, label=name, marker=".", markersize=3, linewidth=1.2)
                color = line.get_color()
                if seeds > 1:
                    axes.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
                finals = _finals(group, axis)
                if finals:
                    axes.scatter(
                        *zip(*finals, strict=True),
                        marker="o",
                        s=36,
                        color=color,
                        edgecolors="black",
                        linewidths=0.6,
                        zorder=4,
                    )
                if axis == "flops":
                    grown = [f for f in group.runs[0].curve.growth_flops if f > 0]
                    shown = [(f, _ppl_at(xs, mean, f)) for f in grown if xs and f >= xs[0]]
                    if shown:
                        marked = True
                        axes.scatter(
                            *zip(*shown, strict=True),
                            marker="D",
                            s=30,
                            zorder=3,
                            color=color,
                            edgecolors="black",
                            linewidths=0.5,
                        )
                    drawn.append({"label": name, "points": len(xs), "seeds": seeds})
            for name, members in (frontiers or {}).items() if axis == "flops" else ():
                vertices = [(p.flops, p.ppl) for p in hull(family_points(members))]
                if vertices:
                    hulls[name] = [list(v) for v in vertices]
                    axes.plot(
                        *zip(*vertices, strict=True),
                        linestyle="--",
                        marker="s",
                        markersize=10,
                        markerfacecolor="none",  # a square around each vertex's ● final
                        color="black",
                        linewidth=0.9,
                        alpha=0.8,
                        zorder=5,
                        label=f"frontier: {name} (convex hull)",
                    )
            axes.set_xscale("log")
            # labels on 1, 2 and 5 × 10^k only: a run spanning less than a decade gets a few, never overlapping
            axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axes.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
            axes.xaxis.set_minor_formatter(NullFormatter())
            axes.set_xlabel(xlabel)
            axes.set_ylabel("validation perplexity")
            axes.grid(True, which="both", alpha=0.3)
        handles, labels = panels[0].get_legend_handles_labels()
        if marked:
            handles.append(
                Line2D([], [], marker="D", linestyle="none", color="grey", markeredgecolor="black")
            )
            labels.append(GROWTH_LABEL)
        outside = len(labels) > LEGEND_INSIDE  # a long legend would cover the curves: beside the panels
        if outside:
            figure.set_figwidth(17)
            legend = figure.legend(handles, labels, fontsize=7, loc="upper right", bbox_to_anchor=(1.0, 0.93))
        else:
            legend = panels[0].legend(handles, labels, fontsize=7)
        figure.suptitle(
            title or "validation perplexity vs cost (◆ growth, ● finished: headline points, -- frontier)"
        )
        if caption:
            figure.text(0.01, 0.01, "\n".join(caption), fontsize=7, va="bottom", wrap=True)
        figure.tight_layout(rect=(0, 0.3 * len(caption) / height, 0.77 if outside else 1, 1))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
        legend_labels = [text.get_text() for text in legend.get_texts()]
        return {"lines": drawn, "frontiers": hulls, "legend": legend_labels, "caption": caption}
    finally:
        plt.close(figure)
