"""Generation with a KV cache (tfctl.model.layers.KVCache) against the uncached path: the logits of every
step equal within 1e-5 inside the context window, so the same seed samples the same text."""

import pytest
import torch

from tfctl.model import TokenformerConfig, TransformerConfig, build_model

SHAPE = dict(vocab_size=96, seq_len=24, n_layers=2, d_model=48, n_heads=4, rotary_pct=0.5)
CONFIGS = [
    TokenformerConfig(**SHAPE, qkv_tokens=20, proj_tokens=28, ffn_tokens=80),
    TransformerConfig(**SHAPE, ffn_hidden=112),
]


def model_of(config):
    torch.manual_seed(0)
    return build_model(config).eval()


@pytest.mark.parametrize("config", CONFIGS, ids=["tokenformer", "transformer"])
@torch.no_grad()
def test_cached_logits_equal_the_uncached_at_every_step(config):
    model = model_of(config)
    idx = torch.randint(0, config.vocab_size, (2, SHAPE["seq_len"]))
    cache = model.new_cache()
    # a 5-token prompt, then a 3-token chunk after the cached ones (the masked case), then one at a time
    for end in [5, 8, *range(9, SHAPE["seq_len"] + 1)]:
        cached = model.next_token_logits(idx[:, :end], cache)
        uncached = model.next_token_logits(idx[:, :end])
        assert torch.allclose(cached, uncached, atol=1e-5, rtol=0), end
        assert len(cache) == end
    # the whole-sequence forward agrees with the cached one position by position
    full, _ = model(idx)
    fresh = model.new_cache()
    steps = [model(idx[:, i : i + 1], cache=fresh)[0][:, 0] for i in range(idx.shape[1])]
    assert torch.allclose(torch.stack(steps, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", CONFIGS, ids=["tokenformer", "transformer"])
def test_generate_samples_the_same_tokens_with_and_without_the_cache(config):
    model = model_of(config)
    prompt = torch.tensor([[3, 14, 15, 92]])
    new = SHAPE["seq_len"] - prompt.shape[1]  # within the window: the cache is exact
    plain = model.generate(prompt, new, temperature=0.8, top_k=20, generator=torch.Generator().manual_seed(1))
    cache, generator, cached = model.new_cache(), torch.Generator().manual_seed(1), prompt
    for chunk in (7, new - 7):  # continued across calls, as `tfctl generate` does between progress updates
        cached = model.generate(cached, chunk, temperature=0.8, top_k=20, generator=generator, cache=cache)
    assert torch.equal(plain, cached)


@torch.no_grad()
def test_past_the_window_the_cache_slides_and_stays_finite():
    config = CONFIGS[0]
    model = model_of(config)
    cache = model.new_cache()
    out = model.generate(torch.tensor([[1, 2, 3]]), 3 * SHAPE["seq_len"], top_k=5, cache=cache)
    assert out.shape == (1, 3 + 3 * SHAPE["seq_len"])
    assert len(cache) == SHAPE["seq_len"] and cache.layers[0].position == out.shape[1] - 1
    # the sliding window holds the last seq_len - 1 tokens' keys: a last step from them is finite
    assert torch.isfinite(model.next_token_logits(out, cache)).all()
