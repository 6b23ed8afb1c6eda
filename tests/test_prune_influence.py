"""Block Influence against an independent by-hand computation: one unpadded forward per prompt, raw layer outputs
from hooks, cosine written out as dot / (|x| |y|), pooled over every token."""
import pytest
import torch

from helpers import tiny_lm, tiny_samples
from prunelens.prune.cache import PrefixCache
from prunelens.prune.calib import build_calib, sample_prompts
from prunelens.prune.influence import block_influence, block_influence_naive
from prunelens.model.surgery import pruned_view


@torch.no_grad()
def by_hand_bi(lm, prompts, keep):
    sums = torch.zeros(len(keep), dtype=torch.float64)
    n = 0
    with pruned_view(lm, keep):
        for p in prompts:
            io = []
            hooks = [layer.register_forward_hook(
                lambda _m, a, kw, o: io.append((kw.get("hidden_states", a[0] if a else None),
                                                o[0] if isinstance(o, tuple) else o)), with_kwargs=True)
                     for layer in lm.anatomy.layers]
            lm.model(input_ids=torch.tensor([p]), use_cache=False)
            for h in hooks:
                h.remove()
            for j, (x, y) in enumerate(io):
                x, y = x[0].double(), y[0].double()
                sums[j] += ((x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1))).sum()
            n += len(p)
    return {i: float(1 - sums[j] / n) for j, i in enumerate(keep)}


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_bi_matches_by_hand_with_padding(family):
    lm = tiny_lm(family, num_layers=5)
    prompts = sample_prompts(lm.tokenizer, tiny_samples(8), "cloze", True)
    assert len({len(p) for p in prompts}) > 1                      # padding really happens
    cal = build_calib(lm, prompts, "t", batch_size=3)
    assert int(sum(m.sum() for _, m, _ in cal.batches)) == cal.n_tokens
    for keep in ([0, 1, 2, 3, 4], [0, 2, 4]):
        ref = by_hand_bi(lm, prompts, keep)
        ours = block_influence(lm, PrefixCache(), cal, keep)
        naive = block_influence_naive(lm, cal, keep)
        for i in keep:
            assert abs(ours[i] - ref[i]) < 1e-5 and abs(naive[i] - ref[i]) < 1e-5, (i, ours[i], naive[i], ref[i])


@torch.no_grad()
def test_bi_uses_raw_last_output_not_normed():
    """ShortGPT's fault: hidden_states[-1] is normed. Our last-layer BI must differ from that version."""
    lm = tiny_lm("llama", num_layers=3)
    prompts = sample_prompts(lm.tokenizer, tiny_samples(4), "cloze", True)
    cal = build_calib(lm, prompts, "t", batch_size=4)
    ours = block_influence(lm, PrefixCache(), cal, [0, 1, 2])
    ids, mask, pos = cal.batches[0]
    hs = lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True).hidden_states
    cos = torch.nn.functional.cosine_similarity(hs[2], hs[3], dim=-1)[mask.bool()].mean()
    assert abs((1 - float(cos)) - ours[2]) > 1e-3


def test_prefix_cache_reuses_and_matches():
    """A second BI call on a model with a later block removed runs only the blocks after the cut."""
    lm = tiny_lm("qwen3", num_layers=6)
    cal = build_calib(lm, sample_prompts(lm.tokenizer, tiny_samples(6), "letter", True), "t", batch_size=4)
    cache = PrefixCache()
    block_influence(lm, cache, cal, list(range(6)))
    calls = []
    hooks = [layer.register_forward_hook(lambda m, a, o: calls.append(m)) for layer in lm.anatomy.layers]
    got = block_influence(lm, cache, cal, [0, 1, 2, 3, 5])
    for h in hooks:
        h.remove()
    assert len(calls) == len(cal.batches)                          # only block 5, once per batch
    ref = by_hand_bi(lm, sample_prompts(lm.tokenizer, tiny_samples(6), "letter", True), [0, 1, 2, 3, 5])
    assert all(abs(got[i] - ref[i]) < 1e-5 for i in ref)
    assert cache.stats()["peak_mb"] > 0
