import pytest

from tfctl.compare.ablation import growth_jumps, markdown

pytestmark = pytest.mark.slow  # the shared growth run trains two stages through the worker


def test_growth_jump_of_a_preserving_growth_is_zero(growth_run):
    rows = growth_jumps(growth_run)
    assert [r["stage"] for r in rows] == ["s2"]
    row = rows[0]
    assert row["init"] == "preserve" and row["max_abs_logit_diff"] <= 1e-5
    # the new stage's step-0 eval runs the grown weights on the same val batches as the last eval before growth
    assert row["val_loss_after_growth"] == pytest.approx(row["val_loss_before"], abs=1e-5)
    assert row["final_val_ppl"] == row["stage_val_ppl"] > 1
    assert "| tiny | s2 | preserve | reset |" in markdown(rows)
