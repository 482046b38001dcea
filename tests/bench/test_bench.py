"""The benchmark suite's smallest run: every table and JSON field is there (timings are not checked)."""

import json

import pytest

from tfctl.bench.__main__ import main


@pytest.mark.slow  # a whole (small) benchmark suite
def test_quick_suite_writes_table_json_and_markdown(tmp_path, capsys):
    out, raw = tmp_path / "benchmarks.md", tmp_path / "results.json"
    main(
        [
            "--quick",
            "--no-compile",
            "--no-data",
            "--fp32-only",
            "--d-model",
            "32",
            "--seq-len",
            "32",
            "--rounds",
            "1",
            "--out",
            str(out),
            "--json",
            str(raw),
        ]
    )
    results = json.loads(raw.read_text())
    cases = {row["case"]: row for row in results["training"]}
    assert set(cases) == {"reference-gpt eager fp32", "tokenformer eager fp32", "transformer eager fp32"}
    reference = cases["reference-gpt eager fp32"]
    tokenformer, transformer = cases["tokenformer eager fp32"], cases["transformer eager fp32"]
    for row in (tokenformer, transformer):  # matched sizes: within 2 % at d=32
        assert abs(row["non_embedding_params"] / reference["non_embedding_params"] - 1) < 0.02
        assert row["vs_reference"] == reference["median_s"] / row["median_s"]
        assert row["vs_reference_cpu"] == reference["cpu_median_s"] / row["cpu_median_s"]
    for field in ("tokens_per_s", "mfu", "median_s", "cpu_median_s", "peak_flops_per_s", "flops_per_token"):
        assert tokenformer[field] > 0
    assert tokenformer["vs_transformer"] == tokenformer["tokens_per_s"] / transformer["tokens_per_s"]
    assert {row["kind"] for row in results["layers"]} == {"pattention", "linear"}
    assert all(
        row["params"] == next(r["params"] for r in results["layers"] if r["pair"] == row["pair"])
        for row in results["layers"]
    )  # each pair has one parameter count
    assert results["peaks"]["fp32"]["flops_per_s"] > 0 and results["machine"]["cpu_count"] >= 1
    printed = capsys.readouterr().out
    assert "tokenformer eager fp32" in printed and "vs reference GPT" in printed
    text = out.read_text()
    assert "python -m tfctl.bench --quick" in text and "## Training step" in text and "machine:" in text
