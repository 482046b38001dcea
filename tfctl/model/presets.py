"""The paper's model shapes, by name (`tfctl grow ... --to incremental-1.4b`, `model.preset` in recipes)."""

from tfctl.model.config import ModelConfig, TokenformerConfig

# Incremental scaling (OpenWebText): d=768, 12 layers, 12 heads fixed; qkv = proj = n, ffn = 4n.
_INCREMENTAL_TOKENS = {"124m": 576, "354m": 2140, "757m": 4872, "1.4b": 9233}
# Pile models: seq 2048; (layers, d_model, heads, qkv = proj tokens, ffn tokens). The names are the
# paper's rounded ones: counted with the embedding, 150M holds 151.9M and 1.5B holds 1.59B.
_PILE_SHAPES = {
    "150m": (12, 768, 12, 768, 3072),
    "450m": (24, 1024, 16, 1024, 4096),
    "900m": (32, 1280, 16, 1280, 5120),
    "1.5b": (40, 1536, 16, 1536, 6144),
}


def _presets() -> dict[str, ModelConfig]:
    presets: dict[str, ModelConfig] = {}
    for size, n in _INCREMENTAL_TOKENS.items():
        presets[f"incremental-{size}"] = TokenformerConfig(
            vocab_size=50304,
            seq_len=1024,
            n_layers=12,
            d_model=768,
            n_heads=12,
            qkv_tokens=n,
            proj_tokens=n,
            ffn_tokens=4 * n,
        )
    for size, (layers, d, heads, n, n_ffn) in _PILE_SHAPES.items():
        presets[f"pile-{size}"] = TokenformerConfig(
            vocab_size=50304,
            seq_len=2048,
            n_layers=layers,
            d_model=d,
            n_heads=heads,
            qkv_tokens=n,
            proj_tokens=n,
            ffn_tokens=n_ffn,
        )
    return presets


PRESETS = _presets()


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]
