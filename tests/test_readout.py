"""Readouts beyond the logit lens (prunelens/readout): states against plain HF forwards, the untrained tuned lens
against the engine's logit lens, probes on simulated states with a planted decision depth."""
import numpy as np
import pytest
import torch

from helpers import tiny_lm, tiny_samples
from prunelens.engine.encode import encode_pair
from prunelens.engine.lens import Lens
from prunelens.engine.score import score
from prunelens.readout.probe import probe_scores
from prunelens.readout.run import _softmax, option_tokens, readouts
from prunelens.readout.states import decision_states, option_states
from prunelens.readout.tuned import Translator, _kl, fit_tuned, option_logits


def test_option_states_are_the_last_token_states_of_a_plain_forward():
    lm, S = tiny_lm("llama", num_layers=3), tiny_samples(4)
    X = option_states(lm, S, batch_size=4)                       # [N, K, D, d]
    for i, s in enumerate(S):
        for k in range(s.n_options):
            ctx, cont = encode_pair(lm.tokenizer, s.contexts[k], s.continuations[k], True)
            hs = lm.model(input_ids=torch.tensor([ctx + cont]), output_hidden_states=True).hidden_states
            for d in range(len(hs) - 1):                         # HF's last state is normed; the lens reads it raw
                np.testing.assert_allclose(X[i, k, d], hs[d][0, -1].detach().numpy(), atol=1e-4, rtol=0)
    assert X.shape[1] == 5 and np.isnan(X[0, 4]).all() and not np.isnan(X[3, 4]).any()   # sample 3 has 5 options


@pytest.mark.parametrize("family,fmt", [("gemma3", "letter"), ("llama", "letter"), ("gemma3", "cloze")])
def test_untrained_translator_is_the_logit_lens(family, fmt):
    lm, S = tiny_lm(family, num_layers=3), tiny_samples(6)
    H = decision_states(lm, S, fmt)                               # [N, D, d]
    tok = torch.as_tensor(option_tokens(lm, S, fmt))
    lens = Lens(lm.anatomy)
    T = Translator(H.shape[-1])
    sc = score(lm, S, fmt, progress=False)
    for d in range(H.shape[1]):
        z = option_logits(lens, T(torch.as_tensor(H[:, d])), tok).detach().numpy()
        if fmt == "letter":                                       # the engine's letter logits, every depth
            np.testing.assert_allclose(np.where(np.isfinite(z), z, np.nan), sc.scores[:, d], atol=1e-4, equal_nan=True)
        else:   # the first token of each option, read by a plain norm + lm_head (+ soft-cap) written here
            a = lm.anatomy
            with torch.no_grad():
                zz = lm.model.get_output_embeddings()(a.final_norm(torch.as_tensor(H[:, d]))).double() * a.logit_scale
                if a.softcap:
                    zz = a.softcap * torch.tanh(zz / a.softcap)
            t = tok.numpy()
            want = np.where(t >= 0, np.take_along_axis(zz.numpy(), np.maximum(t, 0), 1), np.nan)
            np.testing.assert_allclose(np.where(np.isfinite(z), z, np.nan), want, atol=1e-4, equal_nan=True)


def test_fitting_lowers_the_training_kl_and_keeps_identity_reference():
    lm, S = tiny_lm("llama", num_layers=3), tiny_samples(12)
    H = decision_states(lm, S, "letter")
    tok = option_tokens(lm, S, "letter")
    P = _softmax(score(lm, S, "letter", progress=False).scores[:, -1])
    lens = Lens(lm.anatomy)
    r = fit_tuned(lens, H[:8], tok[:8], P[:8], H[8:], tok[8:], P[8:], rank=4, steps=100)
    assert r["scores"].shape == (4, H.shape[1], tok.shape[1])
    for d in range(H.shape[1] - 1):
        ident = float(_kl(torch.as_tensor(P[:8], dtype=torch.float32),
                          option_logits(lens, torch.as_tensor(H[:8, d]), torch.as_tensor(tok[:8]))))
        assert r["kl_train"][d] < ident
    np.testing.assert_allclose(r["kl_eval_identity"][-1], 0.0, atol=1e-5)   # the final depth matches itself


def _planted(N=160, D=5, d=10, K=4, onset=3, shared=False, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, K, N)
    if shared:                                                    # cloze-style option states [N, K, D, d]
        X = rng.normal(size=(N, K, D, d))
        X[np.arange(N), gold, onset:, 0] += 3.0                   # the gold option's state carries the signal
    else:                                                         # letter-style decision state [N, D, d]
        X = rng.normal(size=(N, D, d))
        X[np.arange(N), onset:, gold] += 3.0                      # gold one-hot appears from depth `onset`
    return X, gold, np.full(N, K)


@pytest.mark.parametrize("shared", [False, True])
def test_probe_finds_a_planted_decision_depth_and_the_shuffled_control_does_not(shared):
    X, gold, n_opt = _planted(shared=shared)
    acc = lambda s: (np.nanargmax(np.where(np.isnan(s), -np.inf, s), -1) == gold[:, None]).mean(0)  # noqa: E731
    a = acc(probe_scores(X, gold, n_opt, folds=5))
    assert np.all(a[3:] > 0.85) and np.all(a[:3] < 0.45), a
    c = acc(probe_scores(X, gold, n_opt, folds=5, shuffle_labels=True))
    assert np.all(c[:3] < 0.45), c
    # a shared option scorer fitted to random labels may still point along the planted direction (either sign):
    # the control is then above chance, but far below the real probe
    assert np.all(c[3:] < (0.45 if not shared else a[3:] - 0.3)), (a, c)


def test_readouts_end_to_end_and_refuses_overlap():
    lm, S = tiny_lm("llama", num_layers=3), tiny_samples(16)
    res = readouts(lm, S[:8], S[8:], "cloze", steps=20, folds=2, n_boot=50, progress=False, log=lambda *_: None)
    assert set(res["readouts"]) == {"logit_lens", "option_lens", "tuned_lens", "probe", "probe_shuffled"}
    for r in res["readouts"].values():
        assert len(r["acc"]) == 4 and "decision_depth_pred" in r["estimators"]
    assert res["tuned"]["kl_eval_identity"][-1] == pytest.approx(0, abs=1e-6)   # the target is the final readout
    # partial scoring (options with their own contexts): no single decision position, so no option-restricted lens
    from dataclasses import replace
    W = [replace(s, contexts=tuple(f"{c} ({k})" for k, c in enumerate(s.contexts))) for s in S]
    res = readouts(lm, W[:8], W[8:], "cloze", steps=5, folds=2, n_boot=20, progress=False, log=lambda *_: None)
    assert res["tuned"] is None and set(res["readouts"]) == {"logit_lens", "probe", "probe_shuffled"}
    with pytest.raises(ValueError, match="overlap"):
        readouts(lm, S[:8], S[4:], "cloze", log=lambda *_: None)


def test_cli_readout(tmp_path, capsys):
    import json

    from helpers import write_tiny_qa
    from prunelens.cli import main
    from tiny import save_model

    ckpt = save_model("llama", tmp_path / "m", num_layers=3)
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 16)
    assert main(["readout", "--model", str(ckpt), "--device", "cpu", "--tasks", str(spec), "--steps", "10",
                 "--folds", "2", "--n-boot", "50", "--out", str(tmp_path / "r")]) == 0
    r = json.loads((tmp_path / "r" / "readout.json").read_text())
    assert r["n_train"] == 8 and r["n_eval"] == 8 and r["score_kind"] == "norm"
    assert (tmp_path / "r" / "readout.png").exists() and "tuned_lens: final accuracy" in capsys.readouterr().out
    from prunelens.report.html import build_report
    html = build_report([tmp_path / "r"], tmp_path / "rep.html").read_text()
    assert 'id="readout"' in html and "tuned-lens KL" in html and html.count("<img") == 1 and " None " not in html
    assert main(["readout", "--model", str(ckpt), "--device", "cpu", "--tasks", str(spec), "--n-train", "15",
                 "--out", str(tmp_path / "bad")]) != 0
    assert "--n-train 15" in capsys.readouterr().err


def test_readout_answers_follow_their_intervals():
    from prunelens.readout.run import readout_answers
    rng = np.random.default_rng(0)
    N, D, K = 200, 6, 4
    gold, n_opt = rng.integers(0, K, N), np.full(N, K)
    probe = rng.normal(size=(N, D, K))
    probe[np.arange(N), :3, gold] += 5.0                      # the probe reads the answer at depths 0-2
    shuffled = rng.normal(size=(N, D, K))                     # the control reads nothing
    est = lambda ci, v="identified": {"estimators": {"decision_depth_pred": {"point": ci[0], "ci": ci,   # noqa: E731
                                                                               "verdict": v}}}
    for tuned_ci, want in (([1, 2], "holds"), ([3, 5], "does not hold"), ([2, 4], "not resolved at this n")):
        a = readout_answers({"logit_lens": est([3, 4]), "tuned_lens": est(tuned_ci)}, probe, shuffled, gold, n_opt,
                            n_boot=200)
        assert a[0]["status"] == "holds" and a[0]["depths"] == [0, 1, 2] and a[0]["ci"][0] > 0.5
        assert a[1]["status"] == want
    # a probe that reads exactly what its control reads: the difference is 0 for every question, the CI [0, 0]
    a = readout_answers({"logit_lens": est([3, 4])}, shuffled.copy(), shuffled, gold, n_opt, n_boot=200)
    assert a[0]["status"] == "does not hold" and a[1]["status"] == "not enough data"
    a = readout_answers({"logit_lens": est([None, None], "not identified at this n")}, probe, shuffled, gold, n_opt)
    assert a[0]["status"] == "not enough data"
