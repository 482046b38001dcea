"""A tfctl model as an lm-evaluation-harness language model (`TemplateLM`).

lm-eval asks three questions of a model: the log-likelihood of a continuation given a context (multiple
choice, LAMBADA), the log-likelihood of a whole text in rolling windows (perplexity tasks), and greedy
generation until a stop string. The model's own tokenizer encodes everything; `<|endoftext|>` is the
end-of-text token and the prefix of an empty context.
"""

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tokenizers import Tokenizer

from tfctl.data.tokenizer import eos_id
from tfctl.model.layers import CausalLM


class TfctlLM(TemplateLM):
    def __init__(self, model: CausalLM, tokenizer: Tokenizer, batch_size: int = 8, name: str = "tfctl"):
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = model.config.seq_len
        self.name = name

    @property
    def eot_token_id(self) -> int:
        return eos_id(self.tokenizer)

    @property
    def tokenizer_name(self) -> str:
        return self.name

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self.tokenizer.encode(string, add_special_tokens=False).ids

    def tok_decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False)

    @torch.no_grad()
    def _score_batch(self, batch: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum of log p(continuation), continuation is the greedy choice) for each (context, continuation).

        Each sequence keeps its last `max_length` input tokens; right padding cannot reach earlier positions
        of a causal model, so one forward scores sequences of different lengths.
        """
        inputs = [(context + continuation)[-(self.max_length + 1) :][:-1] for context, continuation in batch]
        width = max(len(x) for x in inputs)
        padded = torch.zeros(len(inputs), width, dtype=torch.long)
        for row, x in enumerate(inputs):
            padded[row, : len(x)] = torch.tensor(x)
        logits, _ = self.model(padded)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        results = []
        for row, ((_, continuation), x) in enumerate(zip(batch, inputs, strict=True)):
            continuation = continuation[-len(x) :]  # a continuation longer than the window: its last part
            span = log_probs[row, len(x) - len(continuation) : len(x)]
            target = torch.tensor(continuation)
            logprob = span.gather(-1, target[:, None]).sum().item()
            results.append((logprob, bool((span.argmax(-1) == target).all())))
        return results

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        """Longest first (lm-eval's convention: a batch that runs out of memory does so at once)."""
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][1] + requests[i][2]))
        results: list = [None] * len(requests)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            scored = self._score_batch([(requests[i][1], requests[i][2]) for i in chunk])
            for i, result in zip(chunk, scored, strict=True):
                results[i] = result
                self.cache_hook.add_partial("loglikelihood", requests[i][0], result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Every token of each text scored once, in disjoint windows of `max_length` (the first conditioned on
        `<|endoftext|>`): the same windows `tfctl eval --text` uses when the text starts with that token."""
        windows, owners = [], []
        for index, request in enumerate(requests):
            (text,) = request.args
            for context, continuation in map(
                make_disjoint_window,
                get_rolling_token_windows(
                    self.tok_encode(text), self.prefix_token_id, self.max_length, context_len=1
                ),
            ):
                windows.append((None, context, continuation))
                owners.append(index)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._loglikelihood_tokens(windows), strict=True):
            totals[owner] += logprob
        for request, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
        return totals

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy decoding until a stop string, `<|endoftext|>` or `max_gen_toks` new tokens."""
        outputs = []
        for request in requests:
            context, settings = request.args
            until = settings.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            ids = self.tok_encode(context) or [self.prefix_token_id]
            new: list[int] = []
            text = ""
            for _ in range(settings.get("max_gen_toks", 256)):
                logits, _ = self.model(torch.tensor([(ids + new)[-self.max_length :]]))
                token = int(logits[0, -1].argmax())
                if token == self.eot_token_id:
                    break
                new.append(token)
                text = self.tok_decode(new)
                if any(stop in text for stop in until):
                    break
            for stop in until:
                text = text.split(stop)[0]
            self.cache_hook.add_partial("generate_until", request.args, text)
            outputs.append(text)
        return outputs
