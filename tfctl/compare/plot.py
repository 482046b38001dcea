"""Figure 3 of the paper, for this run: validation perplexity against cumulative training FLOPs."""

from pathlib import Path

from tfctl.compare.runs import RunSummary


def plot_ppl_vs_flops(runs: list[RunSummary], path: str | Path, title: str | None = None) -> list[dict]:
    """One line per run (log-x; the eval before any training, at 0 FLOPs, has no place on it), growth points
    marked. Writes a PNG; returns what was drawn: [{"label", "points"}] per line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
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
        axes.set_xlabel("cumulative training FLOPs")
        axes.set_ylabel("validation perplexity")
        axes.set_title(title or "validation perplexity vs training FLOPs (◆ growth)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        figure.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
        return [{"label": line.get_label(), "points": len(line.get_xdata())} for line in axes.get_lines()]
    finally:
        plt.close(figure)


def _ppl_at(points: list[tuple[float, float]], flops: float) -> float:
    """The perplexity of the last eval at or before `flops` (growth happens right after an eval)."""
    before = [p for f, p in points if f <= flops]
    return before[-1] if before else points[0][1]
