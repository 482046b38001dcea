import dataclasses

import torch

from tfctl.growth import grow, grow_optimizer_state, layer_sources


def test_carry_keeps_old_rows_and_zeroes_new_ones(trained):
    config, state, moments = trained
    target = dataclasses.replace(config, qkv_tokens=20, proj_tokens=20, ffn_tokens=80, n_layers=4)
    sources = layer_sources(2, 4, "interleave")
    _, new_state = grow(config, state, target, placement="interleave")
    grown = grow_optimizer_state(moments, new_state, sources)
    assert set(grown) == set(new_state)
    for name, tensor in new_state.items():
        for key in ("exp_avg", "exp_avg_sq"):
            assert grown[name][key].shape == tensor.shape, name
    old = moments["blocks.1.ffn.key_tokens"]["exp_avg_sq"]
    carried = grown["blocks.2.ffn.key_tokens"]["exp_avg_sq"]  # old block 1 is new block 2
    assert torch.equal(carried[:64], old) and torch.count_nonzero(carried[64:]) == 0
    assert torch.count_nonzero(grown["blocks.1.ffn.key_tokens"]["exp_avg"]) == 0  # a new block
    assert torch.equal(grown["embedding.weight"]["exp_avg"], moments["embedding.weight"]["exp_avg"])


def test_shapes_alone_are_enough(trained):
    _, _, moments = trained
    shapes = {name: tuple(m["exp_avg"].shape) for name, m in moments.items()}
    shapes["blocks.0.attention.query.key_tokens"] = (30, 32)
    grown = grow_optimizer_state(moments, shapes)
    assert grown["blocks.0.attention.query.key_tokens"]["exp_avg"].shape == (30, 32)
