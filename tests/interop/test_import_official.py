"""`tfctl import`: a state dict in the official TokenFormer layout (random weights, official key names, a small
shape) becomes a tfctl model whose logits equal a forward written here from the official module structure."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import PEAK_FLOPS
from tfctl.model_dir.weights import load_model

L, D, HEADS, VOCAB, QKV, PROJ, FFN, ROTARY_PCT = 2, 32, 4, 384, 12, 10, 24, 0.25


@pytest.fixture(scope="module")
def official_state():
    g = torch.Generator().manual_seed(0)
    state = {"sequential.0.word_embeddings.weight": torch.randn(VOCAB, D, generator=g) * 0.5}
    for i in range(2, L + 2):
        for name, n in (("query", QKV), ("key", QKV), ("value", QKV), ("proj", PROJ)):
            for kind in ("key", "value"):
                state[f"sequential.{i}.attention.{name}.{kind}_param_tokens"] = (
                    torch.randn(n, D, generator=g) * 0.3
                )
        for kind in ("key", "value"):
            state[f"sequential.{i}.mlp.{kind}_param_tokens"] = torch.randn(FFN, D, generator=g) * 0.3
    state[f"sequential.{L + 3}.norm.weight"] = 1 + 0.1 * torch.randn(D, generator=g)
    state[f"sequential.{L + 3}.norm.bias"] = 0.1 * torch.randn(D, generator=g)
    return state


def official_forward(state: dict, ids: torch.Tensor) -> torch.Tensor:
    """The official GPT-NeoX TokenFormer forward, [seq, batch, hidden] as there, fp32, no dropout."""

    def pattention(x, prefix):  # Pattention.forward with norm_activation_type l2_norm_gelu
        weight = x @ state[f"{prefix}.key_param_tokens"].transpose(-2, -1)
        weight = weight / torch.norm(weight, p=2, dim=-1, keepdim=True) * math.sqrt(weight.shape[-1])
        return F.gelu(weight) @ state[f"{prefix}.value_param_tokens"]

    def rotary(x):  # RotaryEmbedding + apply_rotary_pos_emb on the first rotary_ndims dims, x: [s, b, np, hn]
        dim = int((D // HEADS) * ROTARY_PCT)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
        freqs = torch.einsum("i,j->ij", torch.arange(x.shape[0]).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None, None, :], emb.sin()[:, None, None, :]
        rot, passed = x[..., :dim], x[..., dim:]
        x1, x2 = rot[..., : dim // 2], rot[..., dim // 2 :]
        return torch.cat((rot * cos + torch.cat((-x2, x1), dim=-1) * sin, passed), dim=-1)

    x = F.embedding(ids, state["sequential.0.word_embeddings.weight"]).transpose(0, 1)  # [s, b, h]
    s, b, _ = x.shape
    mask = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
    for i in range(2, L + 2):
        p = f"sequential.{i}"
        h = F.layer_norm(x, (D,), eps=1e-5)  # input_layernorm: layernorm_nonparam
        q, k, v = (
            pattention(h, f"{p}.attention.{n}").view(s, b, HEADS, D // HEADS)
            for n in ("query", "key", "value")
        )
        q, k = rotary(q), rotary(k)
        scores = torch.einsum("sbnh,tbnh->bnst", q, k) / math.sqrt(D // HEADS)
        probs = scores.masked_fill(mask, float("-inf")).softmax(-1)
        context = torch.einsum("bnst,tbnh->sbnh", probs, v).reshape(s, b, D)
        x = x + pattention(context, f"{p}.attention.proj")
        x = x + pattention(F.layer_norm(x, (D,), eps=1e-5), f"{p}.mlp")
    x = F.layer_norm(
        x.transpose(0, 1),
        (D,),
        state[f"sequential.{L + 3}.norm.weight"],
        state[f"sequential.{L + 3}.norm.bias"],
        1e-5,
    )
    return F.linear(x, state["sequential.0.word_embeddings.weight"])


def test_pile_layout_imports_with_the_official_logits(official_state, tmp_path, tfctl, tokenizer_path):
    torch.save(official_state, tmp_path / "pytorch_model.bin")
    result = tfctl(
        "import", tmp_path / "pytorch_model.bin", "-o", tmp_path / "tf", "--heads", HEADS, "--seq-len", 16,
        "--tokenizer", tokenizer_path, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)["config"]
    assert (config["n_layers"], config["qkv_tokens"], config["proj_tokens"], config["ffn_tokens"]) == (
        L,
        QKV,
        PROJ,
        FFN,
    )
    model, _ = load_model(tmp_path / "tf")
    ids = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (model(ids)[0] - official_forward(official_state, ids)).abs().max().item() < 1e-5
    # the imported directory is an ordinary model directory: eval (and grow, train `from:`) take it
    (tmp_path / "text.txt").write_text("To be, or not to be, that is the question. " * 8)
    scored = tfctl("eval", tmp_path / "tf", "--text", tmp_path / "text.txt", "--json")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["loss"] > 0


def test_deepspeed_layer_files_import_the_same(official_state, tmp_path):
    """The OpenWebText2 354M layout: latest → global_step*/layer_<i>-model_00-model_states.pt, fp16 on disk."""
    from tfctl.interop.official import import_official, read_official_state

    tag = tmp_path / "checkpoints" / "global_step600000"
    tag.mkdir(parents=True)
    (tmp_path / "checkpoints" / "latest").write_text("global_step600000")
    layers: dict[int, dict] = {}
    for key, value in official_state.items():
        _, index, rest = key.split(".", 2)
        layers.setdefault(int(index), {})[rest] = value.half()
    for index, part in layers.items():
        torch.save(part, tag / f"layer_{index:02d}-model_00-model_states.pt")
    torch.save({"module": None, "iteration": 600000}, tag / "mp_rank_00_model_states.pt")
    state = read_official_state(tmp_path)
    assert set(state) == set(official_state)
    assert all(torch.equal(state[k], official_state[k].half().float()) for k in state)
    import_official(tmp_path / "checkpoints", tmp_path / "tf", heads=HEADS, seq_len=16)
    assert load_model(tmp_path / "tf")[1].n_layers == L


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "not loadable as weights only"),
        ("drop_norm", f"missing sequential.{L + 3}.norm.bias"),
        ("reshape", "has shape"),
        ("foreign", "not an official TokenFormer checkpoint"),
        ("extra", "unexpected tensor"),
        ("small_vocab", "do not fit"),
    ],
)
def test_malformed_checkpoint_is_one_line(official_state, tmp_path, tfctl, tokenizer_path, damage, message):
    state = dict(official_state)
    path = tmp_path / "pytorch_model.bin"
    if damage == "drop_norm":
        del state[f"sequential.{L + 3}.norm.bias"]
    elif damage == "reshape":
        state["sequential.2.mlp.value_param_tokens"] = torch.zeros(FFN, D + 1)
    elif damage == "foreign":
        state = {"transformer.wte.weight": torch.zeros(4, 4)}
    elif damage == "extra":
        state["sequential.2.attention.dense.weight"] = torch.zeros(D, D)
    elif damage == "small_vocab":  # the tokenizer has 384 ids
        state["sequential.0.word_embeddings.weight"] = torch.zeros(64, D)
    torch.save(state, path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    result = tfctl("import", path, "-o", tmp_path / "tf", "--heads", HEADS, "--tokenizer", tokenizer_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "tf").exists()


def imported_recipe(official_state, tmp_path, tokenizer_path, n_heads: int = HEADS):
    """The official checkpoint imported to tmp_path/tf, and a one-stage recipe that starts `from:` it."""
    import yaml

    from tfctl.interop.official import import_official
    from tfctl.recipe import load_recipe

    torch.save(official_state, tmp_path / "pytorch_model.bin")
    imported = tmp_path / "tf"
    import_official(
        tmp_path / "pytorch_model.bin", imported, tokenizer=tokenizer_path, heads=HEADS, seq_len=16
    )
    recipe = {
        "name": "from-official",
        "data": {"source": "shakespeare", "tokenizer": str(tokenizer_path), "seq_len": 16},
        "model": {"d_model": D, "n_layers": L, "n_heads": n_heads, "rotary_pct": ROTARY_PCT,
                  "token_ratios": {"qkv": QKV, "proj": PROJ, "ffn": FFN}},
        "stages": [{"name": "s1", "param_tokens": QKV, "steps": 2, "from": str(imported)}],
        "train": {"global_batch": 4, "eval_interval": 2, "eval_batches": 1, "eval_batch_size": 2,
                  "checkpoint_interval": 2, "peak_flops": PEAK_FLOPS},
        "wandb": {"mode": "disabled"},
    }  # fmt: skip
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return imported, load_recipe(path)


@pytest.mark.slow
def test_a_recipe_stage_trains_from_an_imported_model(official_state, tmp_path, tokenizer_path, monkeypatch):
    """`from: DIR` on the first stage: the imported weights are its init (grown to its size: here the same)."""
    from tfctl.run.orchestrate import train_recipe

    imported, recipe = imported_recipe(official_state, tmp_path, tokenizer_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    results = train_recipe(recipe, run_dir=tmp_path / "run", say=lambda line: None)
    assert results["s1"]["steps"] == 2
    growth = json.loads((tmp_path / "run" / "state.json").read_text())["stages"]["s1"]["growth"]
    assert growth["source"] == str(imported) and growth["max_abs_logit_diff"] < 1e-5


def test_a_recipe_stage_from_an_imported_model_of_another_backbone_is_refused(
    official_state, tmp_path, tokenizer_path, monkeypatch
):
    from tfctl.errors import UserError
    from tfctl.run.orchestrate import train_recipe

    _, recipe = imported_recipe(official_state, tmp_path, tokenizer_path, n_heads=8)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(UserError, match=r"stages\[0\].from .*n_heads 4 \(recipe: 8\)"):
        train_recipe(recipe, run_dir=tmp_path / "run8", say=lambda line: None)
    assert not (tmp_path / "run8" / "stages").exists()  # refused before any stage started
