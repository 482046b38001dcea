"""The comparison report as tables: rows of text for the console (tfctl/cli/render.py) and report.md
(markdown.py), rows of numbers for W&B, and the lines and titles that go with them. The numbers themselves
are `build_report`'s (report.py); this module only formats them.
"""

from tfctl.compare.wording import (
    frontier_ratio_text,
    iso_gap_text,
    iso_ppl_text,
    ppl_gap_text,
    ppl_text,
    ratio_text,
)
from tfctl.model.sizes import format_count


def _flops(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _spread(value: float | None, std: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def _hours(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" + ("" if std is None else f" ± {std:.2g}")


RUN_COLUMNS = ["run", "kind", "val loss", "val ppl", "params", "tokens", "train FLOPs", "device-hours", "MFU"]


def run_values(report: dict) -> tuple[list[str], list[list]]:
    """Every run (each seed its own row) with numbers as numbers (W&B sorts and plots them)."""
    fields = ("label", "kind", "val_loss", "val_ppl", "params", "tokens", "flops", "device_hours", "mfu")
    return RUN_COLUMNS, [[r[f] for f in fields] for r in report["runs"]]


def _as_row(run: dict) -> dict:
    """A report run as a one-seed group row (reports written before groups existed)."""
    row = {key: run.get(key) for key in ("label", "kind", "params", "tokens", "mfu")}
    for key in ("val_loss", "val_ppl", "flops", "device_hours"):
        row[key], row[f"{key}_std"] = run.get(key), None
    return {**row, "seeds": [run.get("seed")], "n_finished": 1}


def run_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """One row per run and its seeds: mean ± std."""
    columns = [
        "run",
        "kind",
        "seeds",
        "val loss",
        "val ppl",
        "params",
        "tokens",
        "train FLOPs",
        "device-hours",
        "MFU",
    ]
    rows = [
        [
            g["label"],
            g["kind"],
            f"{g['n_finished']}/{len(g['seeds'])}",
            _spread(g["val_loss"], g["val_loss_std"], 4),
            _ppl_cell(g),
            format_count(g["params"]),
            format_count(g["tokens"]),
            _flops(g["flops"]),
            _hours(g["device_hours"], g["device_hours_std"]),
            "—" if g["mfu"] is None else f"{g['mfu']:.2%}",
        ]
        for g in report.get("groups") or [_as_row(r) for r in report["runs"]]
    ]
    return columns, rows


def _ppl_cell(group: dict) -> str:
    """exp(mean loss) ± std, and the median beside it with several seeds."""
    cell = _spread(group["val_ppl"], group["val_ppl_std"])
    median = group.get("val_ppl_median")
    return cell if group["val_ppl_std"] is None or median is None else f"{cell} (median {median:.2f})"


def headline_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """One row per reference; each interval sits on the number it was computed for."""
    columns = [
        "against",
        "seeds",
        f"ppl {report['run']}",
        "ppl against",
        "ppl gap [90 %]",
        "FLOPs ratio",
        "device-hours ratio",
        "frontier FLOPs ratio [90 %]",
        "iso-FLOP ppl [90 %]",
        "iso-FLOP gap [90 %]",
        "verdict",
    ]
    rows = []
    for h in report["headline"]:
        if not h["n_seeds"]:
            rows.append([h["against_label"], "0", *["—"] * 8, "no finished pair"])
            continue
        frontier = bool(h.get("frontier"))
        rows.append(
            [
                h["against_label"],
                str(h["n_seeds"]),
                ppl_text(h["ppl_growth"]),
                ppl_text(h["ppl_reference"]),
                ppl_gap_text(h),
                ratio_text(h["flops_ratio"]),
                ratio_text(h["device_hours_ratio"]),
                frontier_ratio_text(h) if frontier else "no frontier",
                iso_ppl_text(h) if frontier else "—",
                iso_gap_text(h) if frontier else "—",
                h["verdict"],
            ]
        )
    return columns, rows


def stage_end_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    families = sorted({name for row in report["stage_ends"] for name in row["frontier_flops_ratio"]})
    columns = ["stage end", "seeds", "val ppl", "cumulative FLOPs", "device-hours"]
    columns += [f"frontier FLOPs ratio ({name})" for name in families]
    rows = [
        [
            row["stage"],
            str(row["n_seeds"]),
            _spread(row["val_ppl"], row["val_ppl_std"]),
            _flops(row["flops"]),
            _hours(row["device_hours"]),
            *[_frontier_ratio(row, name) for name in families],
        ]
        for row in report["stage_ends"]
    ]
    return columns, rows


def _frontier_ratio(row: dict, name: str) -> str:
    bound = row.get("frontier_flops_ratio_bound", {}).get(name)
    return ratio_text(row["frontier_flops_ratio"].get(name), bound)


def variant_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Other growth runs (ablations, `--with`): each against each reference, read off the same frontiers as
    the main run, each interval on the number it was computed for."""
    columns = [
        "growth run",
        "against",
        "seeds",
        "val ppl",
        "cumulative FLOPs",
        "device-hours",
        "frontier FLOPs ratio [90 %]",
        "iso-FLOP ppl [90 %]",
        "iso-FLOP gap [90 %]",
        "verdict",
    ]
    rows = []
    for row in report.get("variants", []):
        for h in row.get("headlines", []):
            frontier = bool(h.get("frontier"))
            rows.append(
                [
                    row["label"],
                    h["against_label"],
                    str(h["n_seeds"]),
                    _spread(row["val_ppl"], row["val_ppl_std"]),
                    _flops(row["flops"]),
                    _hours(row["device_hours"]),
                    frontier_ratio_text(h) if frontier else "no frontier",
                    iso_ppl_text(h) if frontier else "—",
                    iso_gap_text(h) if frontier else "—",
                    h["verdict"],
                ]
            )
    return columns, rows


def outlier_lines(report: dict) -> list[str]:
    """One line per run with an outlier seed (flagged by the robust z-score of its loss; still counted)."""
    lines = []
    for g in report.get("groups", []):
        for seed in g.get("outlier_seeds") or []:
            lines.append(
                f"{g['label']}: seed {seed} is an outlier (its final loss is far from the other seeds'; "
                f"kept: ppl {g['val_ppl']:.2f} is exp(mean loss), the median {g['val_ppl_median']:.2f})"
            )
    return lines


def target_values(report: dict) -> tuple[list[str], list[list]]:
    """The FLOPs-to-reach table (the mean over each run's seeds), easiest target first, numbers as numbers."""
    names = list(dict.fromkeys(r.get("group", r["label"]) for r in report["runs"] if r.get("raced", True)))
    columns = ["target ppl", "target", *[f"FLOPs {name}" for name in names]]
    if report["reference"]:
        columns.append(f"speed-up {report['run']}")
    rows = []
    for race in sorted(report["flops_to_reach"], key=lambda race: -race["ppl"]):
        row = [race["ppl"], race["label"], *[race["group_flops"].get(name) for name in names]]
        if report["reference"]:
            row.append(race["speedup"].get(report["run"]))
        rows.append(row)
    return columns, rows


def wandb_tables(report: dict) -> dict[str, tuple[list[str], list[list]]]:
    """The comparison's W&B tables, numbers as numbers (W&B sorts them)."""
    return {"compare/runs": run_values(report), "compare/flops_to_reach": target_values(report)}


def wandb_summary(report: dict) -> dict:
    """The comparison's headline numbers as W&B summary values: "<run>/<field>", "<key>/<against>"."""
    summary = {}
    for r in report["runs"]:
        for field in ("val_ppl", "val_loss", "flops", "device_hours", "params", "tokens"):
            summary[f"{r['name']}/{field}"] = r[field]
    for h in report["headline"]:
        for key in (
            "flops_ratio",
            "ppl_gap_pct",
            "device_hours_ratio",
            "frontier_flops_ratio",
            "iso_flops_ppl",
            "iso_flops_ppl_gap_pct",
            "n_seeds",
        ):
            summary[f"{key}/{h['against']}"] = h.get(key)
    if report["flops_to_reach"] and report["reference"]:
        summary["speedup_to_reference_ppl"] = report["flops_to_reach"][0]["speedup"].get(report["run"])
    return summary


def target_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    columns, values = target_values(report)
    speedup = bool(report["reference"])
    rows = []
    for ppl, label, *flops in values:
        ratio = flops.pop() if speedup else None
        rows.append([f"{ppl:.2f}", label, *map(_flops, flops), *([_ratio(ratio)] if speedup else [])])
    return columns, rows


def headline_lines(report: dict) -> list[str]:
    return [h["sentence"] for h in report["headline"]]


def stage_end_title(report: dict) -> str:
    """The stage-end table's title: against the frontier only when there is one."""
    if any(row["frontier_flops_ratio"] for row in report["stage_ends"]):
        return "stage ends against the from-scratch frontier"
    return "stage ends"
