"""`tfctl export --hf`: transformers loads the package offline and computes tfctl's logits."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tfctl.model_dir.weights import load_model


@pytest.mark.parametrize("family", ["tokenformer", "transformer"])
def test_export_loads_in_transformers_with_the_same_logits(family, make_model_dir, tmp_path, tfctl):
    model_dir = make_model_dir(family)
    out = tmp_path / "hf"
    result = tfctl("export", model_dir, "--hf", out, "--json")
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["files"]) == {
        "README.md",
        "config.json",
        "configuration_tokenformer.py",
        "generation_config.json",
        "model.safetensors",
        "modeling_tokenformer.py",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "tokenformer" and config["architectures"] == ["TokenformerForCausalLM"]
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_tokenformer.TokenformerForCausalLM"

    hf = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    ours, _ = load_model(model_dir)
    ids = torch.tensor([tokenizer("To be, or not to be, that is the question")["input_ids"]])
    with torch.no_grad():
        assert (hf(ids).logits - ours(ids)[0]).abs().max().item() < 1e-5
        generated = hf.generate(ids, max_new_tokens=8, do_sample=False)
    assert generated.shape == (1, ids.shape[1] + 8) or generated[0, -1] == tokenizer.eos_token_id
    assert generated[0].tolist() == ours.generate(ids, generated.shape[1] - ids.shape[1], top_k=1)[0].tolist()
    assert hf.lm_head.weight.data_ptr() == hf.embedding.weight.data_ptr()  # tied, stored once
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as f:
        assert "lm_head.weight" not in f.keys()


def test_export_of_a_run_has_a_model_card_with_stages_and_ppl(make_run, tmp_path, tfctl):
    result = {"params": 123, "tokens": 4096, "val_loss": 2.0, "val_ppl": 7.389}
    run = make_run(tmp_path / "runs" / "tiny", {"s1": "tokenformer"}, {"s1": result})
    (run / "recipe.yaml").write_text("name: tiny\nstages:\n  - {name: s1, param_tokens: 16, steps: 20}\n")
    exported = tfctl("export", run, "--hf", tmp_path / "hf")
    assert exported.returncode == 0, exported.stderr
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "| s1 | done | 123 | 4,096 | 2.0000 | 7.3890 |" in card
    assert "Final validation perplexity: 7.39" in card and "param_tokens: 16" in card


def test_export_refuses_a_foreign_directory(make_model_dir, tmp_path, tfctl):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    result = tfctl("export", make_model_dir("tokenformer"), "--hf", tmp_path / "notes")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert (tmp_path / "notes" / "mine.txt").is_file()


@pytest.mark.parametrize("family", ["tokenformer", "transformer"])
def test_the_exported_model_generates_with_a_kv_cache_and_the_uncached_logits(
    family, make_model_dir, tmp_path
):
    from transformers import DynamicCache

    from tfctl.interop.hf_export import export_hf

    model_dir = make_model_dir(family)
    export_hf(model_dir, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", trust_remote_code=True).eval()
    ids = torch.randint(0, hf.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = hf(ids, use_cache=False).logits
        cache = DynamicCache(config=hf.config)
        prefix = hf(ids[:, :5], cache=cache, use_cache=True)
        chunk = hf(ids[:, 5:8], cache=prefix.cache, use_cache=True)  # several tokens after the cached ones
        steps = [hf(ids[:, i : i + 1], cache=chunk.cache, use_cache=True).logits for i in range(8, 12)]
        cached = torch.cat([prefix.logits, chunk.logits, *steps], dim=1)
        assert cache.get_seq_length() == 12
        assert (cached - full).abs().max().item() < 1e-5
        # generate() uses the cache by default: after the prompt, each step embeds one token; without it,
        # every step runs the whole context again
        fed = []
        hf.embedding.register_forward_hook(lambda module, args, out: fed.append(args[0].shape[1]))
        options = dict(
            max_new_tokens=10, min_new_tokens=10, do_sample=False
        )  # no early stop at <|endoftext|>
        with_cache = hf.generate(ids[:1], **options)
        assert fed == [12] + [1] * 9
        without = hf.generate(ids[:1], **options, use_cache=False)
        assert fed[10:] == list(range(12, 22))
    assert with_cache.tolist() == without.tolist()
