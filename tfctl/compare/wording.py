"""How the headline's numbers read, in report.md, on the console and in the figure alike (one formatter, so
the three always show the same numbers)."""

from tfctl.compare.frontier import AT_LEAST, AT_MOST

SIGN = {AT_MOST: "≤ ", AT_LEAST: "≥ ", None: ""}


def ratio_text(value: float | None, bound: str | None = None) -> str:
    """0.853 → "0.85×"; a bound: "≤ 0.50×"; None → "—"."""
    return "—" if value is None else f"{SIGN[bound]}{value:.2f}×"


def pct_text(value: float | None, bound: str | None = None) -> str:
    """+4.1 % (a bound: "≥ +4.1 %")."""
    return "—" if value is None else f"{SIGN[bound]}{value:+.1f} %"


def ppl_text(value: float | None, bound: str | None = None) -> str:
    return "—" if value is None else f"{SIGN[bound]}{value:.2f}"


def ci_text(ci: list | None, kind: str) -> str:
    """A 90 % interval, "[0.64, 1.02]"; an unbounded end is 0 (a ratio or perplexity), −∞ or ∞; "" without
    one."""
    if ci is None:
        return ""
    low, high = ci
    if kind == "ratio":
        return f"[{'0' if low is None else f'{low:.2f}'}, {'∞' if high is None else f'{high:.2f}'}]"
    return f"[{'−∞' if low is None else f'{low:+.1f}'}, {'∞' if high is None else f'{high:+.1f}'}]"


def with_ci(text: str, ci: list | None, kind: str) -> str:
    interval = ci_text(ci, kind)
    return f"{text} {interval}" if interval else text


def frontier_ratio_text(h: dict) -> str:
    return with_ci(
        ratio_text(h.get("frontier_flops_ratio"), h.get("frontier_flops_ratio_bound")),
        h.get("frontier_flops_ratio_ci"),
        "ratio",
    )


def iso_gap_text(h: dict) -> str:
    return with_ci(
        pct_text(h.get("iso_flops_ppl_gap_pct"), h.get("iso_flops_ppl_gap_pct_bound")),
        h.get("iso_flops_ppl_gap_pct_ci"),
        "pct",
    )


def iso_ppl_text(h: dict) -> str:
    return with_ci(
        ppl_text(h.get("iso_flops_ppl"), h.get("iso_flops_ppl_bound")), h.get("iso_flops_ppl_ci"), "ratio"
    )


def ppl_gap_text(h: dict) -> str:
    return with_ci(pct_text(h.get("ppl_gap_pct")), h.get("ppl_gap_pct_ci"), "pct")


def seeds_text(h: dict) -> str:
    n = h["n_seeds"]
    return f"{n} seeds, 90 % intervals" if n > 1 else "1 seed: no interval"


def sentence(h: dict) -> str:
    """The headline in one sentence a user can act on: the verdict first, then the numbers it rests on."""
    if not h["n_seeds"]:
        return f"{h['run']} vs {h['against_label']}: no finished pair of runs yet, no headline"
    parts = [f"{h['run']} vs {h['against_label']}: {h['verdict']} ({seeds_text(h)})"]
    if h.get("frontier"):
        parts.append(
            f"{frontier_ratio_text(h)} the FLOPs the from-scratch frontier needs for ppl "
            f"{ppl_text(h['ppl_growth'])}; at equal FLOPs the frontier reaches ppl "
            f"{iso_ppl_text(h)} (gap {iso_gap_text(h)})"
        )
    hours = ratio_text(h.get("device_hours_ratio"))
    parts.append(
        f"against {h['against_label']}: ppl gap {ppl_gap_text(h)}, {ratio_text(h['flops_ratio'])} the FLOPs, "
        f"{hours} the device-hours"
    )
    return "; ".join(parts)
