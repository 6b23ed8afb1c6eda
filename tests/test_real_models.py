"""The real model: Gemma-3-270M through the built-in alias, 32 ARC-Easy validation questions, cloze format.

Everything prunelens reports is checked against a plain computation written here: one HF forward per option with
output_hidden_states, the model's own final norm and lm_head on every depth, full-vocab log_softmax."""
import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.real

N = 32


@pytest.fixture(scope="module")
def gemma():
    from prunelens.model import load_model
    return load_model("gemma-3-270m", device="cpu", dtype="float32")


@torch.no_grad()
def plain_scores(lm, samples):
    model, tok = lm.model, lm.tokenizer
    norm, head = model.model.norm, model.lm_head
    out = np.full((len(samples), 19, 5), np.nan)
    for i, s in enumerate(samples):
        for k, (ctx, cont) in enumerate(zip(s.contexts, s.continuations)):
            assert not ctx.endswith(" ")
            c_ids = tok(ctx).input_ids
            whole = tok(ctx + cont).input_ids
            t_ids = whole[len(c_ids):]
            # logits only where they are read: the last context token and the continuation but its last token
            o = model(torch.tensor([c_ids + t_ids]), output_hidden_states=True, logits_to_keep=len(t_ids) + 1)
            pos = torch.arange(len(c_ids) - 1, len(c_ids) + len(t_ids) - 1)
            # depths 0..17 through the model's own norm and lm_head in one call (one read of the 262k x 640
            # unembedding per option instead of one per depth); HF's last hidden state is already normed, so
            # depth 18 uses the model's logits.
            h = torch.stack([hd[0, pos] for hd in o.hidden_states[:18]])          # [18, T, d]
            z = torch.cat([head(norm(h)), o.logits[:, :-1]])                       # [19, T, V]
            lp = torch.log_softmax(z.double(), -1)
            out[i, :, k] = lp[:, torch.arange(len(t_ids)), torch.tensor(t_ids)].sum(-1).numpy()
    return out


def test_analyze_matches_plain_computation(gemma, data_dir, tmp_path):
    from prunelens.analyze import analyze
    from prunelens.tasks import load_task

    task = load_task("arc_easy", split="validation", data_dir=str(data_dir), limit=N)
    assert len(task.samples) == N
    assert gemma.anatomy.num_layers == 18 and gemma.anatomy.tied
    res = analyze("gemma-3-270m", "arc_easy", "cloze", tmp_path, split="validation", data_dir=str(data_dir),
                  limit=N, lm=gemma, task_obj=task, n_boot=200, progress=False)
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert saved["n_samples"] == N and saved["num_layers"] == 18 and len(saved["depths"]) == 19
    for f in ("dm_by_depth.png", "of_heatmap.png", "kl_by_depth.png", "samples.csv"):
        assert (tmp_path / f).stat().st_size > 1000

    ref = plain_scores(gemma, task.samples)
    gold = np.array([s.gold for s in task.samples])
    K = np.array([s.n_options for s in task.samples])
    masked = np.where(np.arange(5)[None, None] < K[:, None, None], ref, -np.inf)
    others = masked.copy()
    others[np.arange(N), :, gold] = -np.inf
    dm_ref = masked[np.arange(N), :, gold] - others.max(-1)        # [N, 19]
    acc_ref = (masked[:, -1].argmax(-1) == gold).mean()
    assert abs(res["acc"] - acc_ref) <= 1e-3
    np.testing.assert_allclose([r["dm_mean"] for r in saved["depths"]], dm_ref.mean(0), atol=1e-3)
    # acc_norm by hand: per-character normalisation of the final-depth log-likelihood
    char = np.array([[len(c) for c in s.choices] + [1] * (5 - s.n_options) for s in task.samples])
    acc_norm_ref = ((masked[:, -1] / char).argmax(-1) == gold).mean()
    assert abs(res["acc_norm"] - acc_norm_ref) <= 1e-3
    # this model is no better than chance at the embeddings and clearly better at the end
    assert saved["depths"][0]["acc"] < saved["depths"][-1]["acc"]
