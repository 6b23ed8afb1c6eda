"""Shared test helpers: tiny LoadedModels and MCSamples built from tests/tiny.py, and an independent plain
computation of per-depth option scores (one HF forward per option, full-vocab lens on every position)."""
from __future__ import annotations

import copy

import numpy as np
import torch

from prunelens.engine.encode import encode_pair
from prunelens.model import LoadedModel, find_anatomy
from prunelens.tasks.base import MCSample
from tiny import _ITEMS, make_model, make_tokenizer


def tiny_lm(family: str, **kw) -> LoadedModel:
    model = make_model(family, **kw)
    tok = make_tokenizer()
    return LoadedModel(model=model, tokenizer=tok, anatomy=find_anatomy(model), name=family, path=family)


def tiny_samples(n: int = 12) -> list[MCSample]:
    out = []
    for i, (q, opts, ans) in enumerate(_ITEMS[:n]):
        ctx = f"Question: {q}\nAnswer:"
        letter = f"Question: {q}\n" + "".join(f"{'ABCDE'[k]}. {o}\n" for k, o in enumerate(opts)) + "Answer:"
        out.append(MCSample(str(i), tuple([ctx] * len(opts)), tuple(" " + o for o in opts), tuple(opts), ans, letter))
    return out


@torch.no_grad()
def plain_cloze_scores(model, tok, samples, add_bos=True) -> np.ndarray:
    """[N, L+1, Kmax]: for each option one plain forward with output_hidden_states; every depth goes through
    norm + lm_head (+ softcap) by hand; HF's last hidden state is already normed so the last depth uses logits."""
    a = find_anatomy(model)
    N, K = len(samples), max(s.n_options for s in samples)
    out = np.full((N, a.num_layers + 1, K), np.nan)
    for i, s in enumerate(samples):
        for k in range(s.n_options):
            ctx, cont = encode_pair(tok, s.contexts[k], s.continuations[k], add_bos)
            ids = torch.tensor([ctx + cont])
            o = model(ids, output_hidden_states=True)
            hs = o.hidden_states
            for d in range(len(hs)):
                if d == len(hs) - 1:
                    z = o.logits[0].double()
                else:
                    z = model.get_output_embeddings()(a.final_norm(hs[d]))[0].double()
                    z = z * a.logit_scale
                    if a.softcap:
                        z = a.softcap * torch.tanh(z / a.softcap)
                lp = torch.log_softmax(z, -1)
                out[i, d, k] = sum(lp[len(ctx) - 1 + j, cont[j]].item() for j in range(len(cont)))
    return out


def write_tiny_qa(path, n: int) -> "Path":
    """A custom-task JSONL (default spec: question / choices / answer) with the first `n` tiny items."""
    import json
    from pathlib import Path

    path = Path(path)
    path.write_text("".join(json.dumps({"question": q, "choices": o, "answer": a}) + "\n" for q, o, a in _ITEMS[:n]))
    return path


def with_and_without_prefix(lm, run, samples, batch_size: int = 4):
    """run(dense_prefix: bool) -> result dict, both ways, counting the first layer's forward calls: returns (whole,
    pre, calls saved by the prefix, calls of one whole final-depth cloze pass over `samples`). A pass that starts
    after layer 0 saves exactly one pass's calls."""
    from prunelens.engine.score import score
    calls = {"n": 0}
    h = lm.anatomy.layers[0].register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    try:
        out = {}
        for on in (True, False):
            calls["n"] = 0
            out[on] = (run(on), calls["n"])
        calls["n"] = 0
        score(lm, samples, "cloze", depths=[lm.anatomy.num_layers], batch_size=batch_size, progress=False)
        one = calls["n"]
    finally:
        h.remove()
    return out[False][0], out[True][0], out[False][1] - out[True][1], one


def hand_model(model, layer_ids):
    """A copy of `model` whose decoder runs exactly `layer_ids` (original ids, in order), with the attention
    layer_idx and per-layer config lists set as HF expects: built without prunelens' surgery."""
    m = copy.deepcopy(model)
    old = m.model.layers
    m.model.layers = torch.nn.ModuleList([old[i] for i in layer_ids])
    for j, layer in enumerate(m.model.layers):
        layer.self_attn.layer_idx = j
    cfg = m.config
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = [cfg.layer_types[i] for i in layer_ids]
    cfg.num_hidden_layers = len(layer_ids)
    return m
