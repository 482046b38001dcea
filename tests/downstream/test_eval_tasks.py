"""`tfctl eval --tasks`: lm-evaluation-harness over a tfctl model, offline, on tasks built from the corpus."""

import json
import math

import pytest
import torch
from tokenizers import Tokenizer

from tfctl.downstream.harness import TfctlLM
from tfctl.downstream.tasks import evaluate_run_stages, evaluate_tasks
from tfctl.model_dir.weights import load_model


def choice_scores(model, tokenizer, context: str, choices: list[str]) -> list[float]:
    """Σ log p(" " + choice | context), written out without lm-eval."""
    scores = []
    for choice in choices:
        context_ids = tokenizer.encode(context, add_special_tokens=False).ids
        whole = tokenizer.encode(context + " " + choice, add_special_tokens=False).ids
        logits, _ = model(torch.tensor([whole[:-1]]))
        log_probs = torch.log_softmax(logits[0], -1)
        scores.append(sum(log_probs[i - 1, whole[i]].item() for i in range(len(context_ids), len(whole))))
    return scores


def test_multiple_choice_accuracy_matches_a_direct_computation(make_model_dir, local_tasks, capfd):
    model_dir = make_model_dir("tokenformer")
    capfd.readouterr()
    result = evaluate_tasks(model_dir, "shakespeare_mc", include_path=local_tasks, limit=8)
    assert "%|" not in capfd.readouterr().err  # no lm-eval progress bar breaking into tfctl's console
    model, _ = load_model(model_dir)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    docs = [json.loads(line) for line in (local_tasks / "mc.jsonl").read_text().splitlines()[:8]]
    with torch.no_grad():
        correct = [
            max(range(4), key=choice_scores(model, tokenizer, d["context"], d["choices"]).__getitem__)
            == d["gold"]
            for d in docs
        ]
    assert result["model"] == str(model_dir)
    assert result["results"]["shakespeare_mc"]["acc"] == pytest.approx(sum(correct) / len(correct))
    assert 0 <= result["results"]["shakespeare_mc"]["acc_norm"] <= 1


def test_rolling_loglikelihood_equals_tfctl_eval_text(make_model_dir, tmp_path, tfctl, corpus):
    """The same text, tokenizer and windows: lm-eval's bits per byte converts back to `tfctl eval --text`'s loss."""
    model_dir = make_model_dir("tokenformer")
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ids = tokenizer.encode(corpus[:3000], add_special_tokens=False).ids
    text = tokenizer.decode(ids[: 3 * 64 + 7])
    while len(tokenizer.encode(text, add_special_tokens=False).ids) % 64:  # whole windows only
        text = text[:-1]
    tokens = len(tokenizer.encode(text, add_special_tokens=False).ids)
    assert tokens >= 128
    (tmp_path / "one.jsonl").write_text(json.dumps({"text": text}) + "\n")
    (tmp_path / "one_text.yaml").write_text(
        f"task: one_text\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tmp_path / 'one.jsonl'}\n"
        'test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: ""\ndoc_to_target: "{{text}}"\n'
        "metric_list:\n  - metric: bits_per_byte\n"
    )
    # tfctl eval --text scores tokens 1..N of a stream: put <|endoftext|> first, as lm-eval's rolling windows do
    (tmp_path / "one.txt").write_text("<|endoftext|>" + text)
    harness = tfctl("eval", model_dir, "--tasks", "one_text", "--include-path", tmp_path, "--json")
    assert harness.returncode == 0, harness.stderr
    plain = tfctl("eval", model_dir, "--text", tmp_path / "one.txt", "--json")
    assert plain.returncode == 0, plain.stderr
    bits_per_byte = json.loads(harness.stdout)["results"]["one_text"]["bits_per_byte"]
    loss_from_harness = bits_per_byte * math.log(2) * len(text.encode("utf-8")) / tokens
    assert json.loads(plain.stdout)["tokens"] == tokens
    assert abs(loss_from_harness - json.loads(plain.stdout)["loss"]) < 1e-4


def test_generate_until_is_greedy_and_stops(make_model_dir):
    model, _ = load_model(make_model_dir("tokenformer"))
    tokenizer = Tokenizer.from_file(str(make_model_dir("tokenformer") / "tokenizer.json"))
    lm = TfctlLM(model, tokenizer)

    class Request:
        args = ("To be, or not", {"until": ["zzz"], "max_gen_toks": 6})

    (text,) = lm.generate_until([Request()])
    ids = tokenizer.encode("To be, or not", add_special_tokens=False).ids
    expected = model.generate(torch.tensor([ids]), 6, top_k=1)[0, len(ids) :].tolist()
    if lm.eot_token_id in expected:
        expected = expected[: expected.index(lm.eot_token_id)]
    assert text == tokenizer.decode(expected)


def test_all_stages_of_a_run(make_run, local_tasks, tmp_path):
    run = make_run(tmp_path / "runs" / "tiny", {"s1": "tokenformer", "s2": "tokenformer"})
    result = evaluate_run_stages(run, ["shakespeare_mc", "shakespeare_ppl"], local_tasks, limit=2)
    assert list(result["stages"]) == ["s1", "s2"]
    s1, s2 = (result["stages"][s]["results"] for s in ("s1", "s2"))
    assert s1 == s2 and set(s1) == {"shakespeare_mc", "shakespeare_ppl"}  # same weights, same numbers
    assert s1["shakespeare_ppl"]["bits_per_byte"] > 0


def test_hub_task_without_network_is_one_line(make_model_dir, tmp_path, tfctl):
    (tmp_path / "hub_task.yaml").write_text(
        "task: hub_task\ndataset_path: EleutherAI/lambada_openai\ntest_split: test\n"
        'output_type: loglikelihood\ndoc_to_text: "{{text}}"\ndoc_to_target: "{{text}}"\n'
    )
    result = tfctl("eval", make_model_dir("tokenformer"), "--tasks", "hub_task", "--include-path", tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: task hub_task: cannot load")


def test_the_readmes_example_tasks_run_from_the_repository_root(make_model_dir, tfctl):
    from tests.conftest import REPO

    result = tfctl(
        "eval", make_model_dir("tokenformer"), "--tasks", "shakespeare_mc,shakespeare_ppl",
        "--include-path", "examples/tasks", "--limit", "4", "--json", cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert 0 <= results["shakespeare_mc"]["acc"] <= 1 and results["shakespeare_ppl"]["bits_per_byte"] > 0


def test_the_example_tasks_are_what_their_builder_writes_and_the_tests_use_their_first_lines(
    local_tasks, tmp_path
):
    from tests.conftest import REPO
    from tests.interop.conftest import example_tasks

    example_tasks().write_data(tmp_path)
    for name in ("mc.jsonl", "ppl.jsonl"):
        shipped = (REPO / "examples" / "tasks" / name).read_text()
        assert (tmp_path / name).read_text() == shipped
        assert shipped.startswith((local_tasks / name).read_text())
    assert f"test: {local_tasks}/mc.jsonl" in (local_tasks / "shakespeare_mc.yaml").read_text()
