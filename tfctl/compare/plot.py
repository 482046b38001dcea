"""Figure 3 of the paper, for this run: validation perplexity against cumulative training FLOPs."""

from pathlib import Path

from tfctl.compare.runs import RunSummary

GROWTH_LABEL = "growth (a new stage starts)"


def plot_ppl_vs_flops(runs: list[RunSummary], path: str | Path, title: str | None = None) -> dict:
    """One line per run (log-x; the eval before any training, at 0 FLOPs, has no place on it), growth points
    marked (and in the legend). Writes a PNG; returns what was drawn: {"lines": [{"label", "points"}] per
    line, "legend": [label, ...]}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    marked = False
    try:
        for run in runs:
            points = [(f, p) for f, p in zip(run.curve.flops, run.curve.ppl, strict=True) if f > 0]
            (line,) = axes.plot(
                [f for f, _ in points],
                [p for _, p in points],
                label=f"{run.name} ({run.kind})",
                marker=".",
                markersize=4,
            )
            grown = [(f, _ppl_at(points, f)) for f in run.curve.growth_flops if f > 0 and points]
            if grown:
                marked = True
                axes.scatter(
                    [f for f, _ in grown],
                    [p for _, p in grown],
                    marker="D",
                    s=30,
                    zorder=3,
                    color=line.get_color(),
                    edgecolors="black",
                    linewidths=0.5,
                )
        axes.set_xscale("log")
        # labels on 1, 2 and 5 × 10^k only: a run spanning less than a decade gets a few, never overlapping
        axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("cumulative training FLOPs")
        axes.set_ylabel("validation perplexity")
        axes.set_title(title or "validation perplexity vs training FLOPs")
        axes.grid(True, which="both", alpha=0.3)
        handles, labels = axes.get_legend_handles_labels()
        if marked:
            handles.append(
                Line2D([], [], marker="D", linestyle="none", color="grey", markeredgecolor="black")
            )
            labels.append(GROWTH_LABEL)
        axes.legend(handles, labels)
        figure.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
        return {
            "lines": [
                {"label": line.get_label(), "points": len(line.get_xdata())} for line in axes.get_lines()
            ],
            "legend": [text.get_text() for text in axes.get_legend().get_texts()],
        }
    finally:
        plt.close(figure)


def _ppl_at(points: list[tuple[float, float]], flops: float) -> float:
    """The perplexity of the last eval at or before `flops` (growth happens right after an eval)."""
    before = [p for f, p in points if f <= flops]
    return before[-1] if before else points[0][1]
