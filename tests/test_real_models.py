"""The real models: the built-in aliases (Gemma-3-270M, SmolLM2-135M-Instruct), ARC-Easy validation questions.

Everything prunelens reports is checked against a plain computation written here: one HF forward per option with
output_hidden_states, the model's own final norm and lm_head on every depth, full-vocab log_softmax in float64."""
import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.real

# alias -> (questions, layers): Gemma is the default model and gets the larger check; SmolLM2 a handful.
MODELS = {"gemma-3-270m": (32, 18), "smollm2-135m": (8, 30)}


@pytest.fixture(scope="module", params=list(MODELS))
def real(request):
    from prunelens.model import load_model
    return request.param, load_model(request.param, device="cpu", dtype="float32")


def _tokens(tok, text, add_bos):
    return tok(text, add_special_tokens=add_bos).input_ids


@torch.no_grad()
def plain_scores(lm, samples, add_bos):
    model, tok = lm.model, lm.tokenizer
    norm, head = model.model.norm, model.lm_head
    L = model.config.num_hidden_layers
    out = np.full((len(samples), L + 1, 5), np.nan)
    for i, s in enumerate(samples):
        for k, (ctx, cont) in enumerate(zip(s.contexts, s.continuations)):
            assert not ctx.endswith(" ")
            c_ids = _tokens(tok, ctx, add_bos)
            t_ids = _tokens(tok, ctx + cont, add_bos)[len(c_ids):]
            # logits only where they are read: the last context token and the continuation but its last token
            o = model(torch.tensor([c_ids + t_ids]), output_hidden_states=True, logits_to_keep=len(t_ids) + 1)
            pos = torch.arange(len(c_ids) - 1, len(c_ids) + len(t_ids) - 1)
            # HF's last hidden state is already normed, so depth L uses the model's own logits.
            h = torch.stack([hd[0, pos] for hd in o.hidden_states[:L]])            # [L, T, d]
            z = torch.cat([head(norm(h)), o.logits[:, :-1]])                       # [L+1, T, V]
            lp = torch.log_softmax(z.double(), -1)
            out[i, :, k] = lp[:, torch.arange(len(t_ids)), torch.tensor(t_ids)].sum(-1).numpy()
    return out


def test_analyze_matches_plain_computation(real, data_dir, tmp_path):
    from prunelens.analyze import analyze
    from prunelens.tasks import load_task

    alias, lm = real
    N, L = MODELS[alias]
    task = load_task("arc_easy", split="validation", data_dir=str(data_dir), limit=N)
    assert len(task.samples) == N
    assert lm.anatomy.num_layers == L and lm.anatomy.tied
    res = analyze(alias, "arc_easy", "cloze", tmp_path, split="validation", data_dir=str(data_dir),
                  limit=N, lm=lm, task_obj=task, n_boot=200, progress=False)
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert saved["n_samples"] == N and saved["num_layers"] == L and len(saved["depths"]) == L + 1
    for f in ("dm_by_depth.png", "of_heatmap.png", "kl_by_depth.png", "samples.csv"):
        assert (tmp_path / f).stat().st_size > 1000

    # lm-eval's rule: BOS for Gemma; SmolLM2's tokenizer adds none and lm-eval adds none (no chat template).
    add_bos = alias.startswith("gemma")
    assert saved["config"]["add_bos"] == add_bos
    ref = plain_scores(lm, task.samples, add_bos)
    gold = np.array([s.gold for s in task.samples])
    K = np.array([s.n_options for s in task.samples])
    masked = np.where(np.arange(5)[None, None] < K[:, None, None], ref, -np.inf)
    others = masked.copy()
    others[np.arange(N), :, gold] = -np.inf
    dm_ref = masked[np.arange(N), :, gold] - others.max(-1)        # [N, L+1]
    acc_ref = (masked[:, -1].argmax(-1) == gold).mean()
    assert abs(res["acc"] - acc_ref) <= 1e-3
    np.testing.assert_allclose([r["dm_mean"] for r in saved["depths"]], dm_ref.mean(0), atol=1e-3)
    # acc_norm by hand: per-character normalisation of the final-depth log-likelihood
    char = np.array([[len(c) for c in s.choices] + [1] * (5 - s.n_options) for s in task.samples])
    acc_norm_ref = ((masked[:, -1] / char).argmax(-1) == gold).mean()
    assert abs(res["acc_norm"] - acc_norm_ref) <= 1e-3
    # each model is better at the end than at the embeddings
    assert saved["depths"][0]["acc"] < saved["depths"][-1]["acc"]


@torch.no_grad()
def test_letter_lens_matches_plain_forward(real, data_dir):
    """Letter format at every depth: the option letters' logits of the lens at the prompt's last token, against the
    model's own norm and lm_head on HF's hidden states (and its own logits at the last depth)."""
    from prunelens.engine.score import score_letter
    from prunelens.tasks import load_task

    alias, lm = real
    L = MODELS[alias][1]
    samples = load_task("arc_easy", split="validation", data_dir=str(data_dir), limit=4).samples
    sc = score_letter(lm, samples, progress=False)
    add_bos = alias.startswith("gemma")
    model, tok = lm.model, lm.tokenizer
    for i, s in enumerate(samples):
        ids = _tokens(tok, s.letter_prompt, add_bos)
        letters = [_tokens(tok, s.letter_prompt + c, add_bos)[len(ids)] for c in s.letters]
        o = model(torch.tensor([ids]), output_hidden_states=True)
        z = torch.cat([model.lm_head(model.model.norm(torch.stack([h[0, -1] for h in o.hidden_states[:L]]))),
                       o.logits[0, -1:]])                                              # [L+1, V]
        np.testing.assert_allclose(sc.scores[i, :, :s.n_options], z[:, letters].double().numpy(), atol=2e-3)
