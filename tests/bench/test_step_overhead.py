"""The worker-vs-bare-loop section: the demo recipe's three stages measured, and its table and target line."""

import json
import os
import subprocess
import sys

import pytest

from tfctl.bench.report import step_overhead_table, targets
from tfctl.launch import OMP_SPIN_COUNT


@pytest.mark.slow  # three real (1-rank, in-process) stages set up and stepped
def test_demo_stages_are_measured_against_a_bare_loop(tmp_path):
    out = tmp_path / "rows.json"
    command = [sys.executable, "-m", "tfctl.bench.step_overhead", "--recipes", "recipes/tiny.yaml"]
    command += ["--threads", "1", "--rounds", "2", "--warmup", "1", "--json", str(out)]
    subprocess.run(command, check=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows = json.loads(out.read_text())
    assert all(
        r["omp_wait_policy"] == f"GOMP_SPINCOUNT={OMP_SPIN_COUNT}" for r in rows
    )  # as tfctl train launches a stage
    assert [(r["stage"], r["threads"], r["param_tokens"]) for r in rows] == [
        ("s1", 1, 32),
        ("s2", 1, 96),
        ("s3", 1, 192),
    ]
    for row in rows:
        assert row["shape"] == "d 64, 2 layers, batch 16 x 128" and row["vocab_size"] >= 2048
        assert row["worker_s"] > 0 and row["bare_s"] > 0
        assert row["ratio"] == row["worker_s"] / row["bare_s"]
    results = {"training": [], "peaks": {}, "step_overhead": rows}
    table = step_overhead_table(results)
    assert len(table) == 4 and table[1][5] == f"{rows[0]['ratio']:.2f}x"
    target = next(r for r in targets(results) if "bare loop" in r[0])
    assert target[2] == ("yes" if max(r["ratio"] for r in rows) <= 1.15 else "no")
