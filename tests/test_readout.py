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
from prunelens.readout.run import _softmax, option_trie, readouts
from prunelens.readout.states import decision_states, last_states, option_states
from prunelens.readout.trie import build
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


def test_trie_nodes_paths_and_scores_by_hand():
    # q0: distinct first tokens (one node); q1: all share 5 then part at 6/7, option 2 parts later at 8/9;
    # q2: option 1 is a strict prefix of option 0, options 2 and 3 are identical
    opts = [[[1, 2], [3], [4, 5]],
            [[5, 6, 1], [5, 7], [5, 6, 8], [5, 6, 9]],
            [[1, 2, 3], [1, 2], [4], [4]]]
    t = build(opts)
    nodes = {(int(q), int(j)): sorted(int(x) for x in tok if x >= 0) for q, j, tok in zip(t.question, t.prefix, t.tok)}
    assert nodes == {(0, 0): [1, 3, 4], (1, 1): [6, 7], (1, 2): [1, 8, 9], (2, 0): [1, 4]}
    assert t.prefix_options == 1                       # q2's option 1 ends where option 0 goes on
    rng = np.random.default_rng(0)
    z = torch.as_tensor(rng.normal(size=t.tok.shape))
    got = t.scores(z).numpy()
    lp = {}                                            # restricted log-softmax at each node, by hand
    for m, (q, j) in enumerate(zip(t.question, t.prefix)):
        kids = [int(x) for x in t.tok[m] if x >= 0]
        zz = z[m, :len(kids)].numpy()
        lp[int(q), int(j)] = dict(zip(kids, zz - np.log(np.exp(zz).sum())))
    want = np.full((3, 4), -np.inf)
    for q, seqs in enumerate(opts):
        for k, seq in enumerate(seqs):
            want[q, k] = sum(lp[q, j][seq[j]] for j in range(len(seq)) if (q, j) in lp and seq[j] in lp[q, j])
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got[2, 2] == got[2, 3] and got[1, 0] != got[1, 2]    # identical options tie; the later node separates


@pytest.mark.parametrize("family,fmt", [("gemma3", "letter"), ("llama", "letter"), ("gemma3", "cloze")])
def test_untrained_translator_is_the_logit_lens(family, fmt):
    lm, S = tiny_lm(family, num_layers=3), tiny_samples(6)
    trie, seqs, _ = option_trie(lm, S, fmt)
    H = last_states(lm, seqs, 4)                                  # [M, D, d]
    tok = torch.as_tensor(trie.tok)
    lens = Lens(lm.anatomy)
    T = Translator(H.shape[-1])
    sc = score(lm, S, fmt, progress=False)
    if fmt == "letter":
        np.testing.assert_allclose(H, decision_states(lm, S, fmt), atol=1e-5)
    for d in range(H.shape[1]):
        z = trie.scores(option_logits(lens, T(torch.as_tensor(H[:, d])), tok)).detach().numpy()
        z = np.where(np.isfinite(z), z, np.nan)
        if fmt == "letter":           # the engine's letter logits, every depth, up to each question's log-sum-exp
            e = sc.scores[:, d]
            mx = np.nanmax(e, 1, keepdims=True)
            want = e - mx - np.log(np.nansum(np.exp(e - mx), 1, keepdims=True))
            np.testing.assert_allclose(z, want, atol=1e-4, equal_nan=True)
        else:   # each node's state by a plain HF forward, read by norm + lm_head (+ soft-cap) written here
            a = lm.anatomy
            conts = [[encode_pair(lm.tokenizer, c, t, True) for c, t in zip(s.contexts, s.continuations)] for s in S]
            for m, (q, k, j) in enumerate(zip(trie.question, trie.option, trie.prefix)):
                ctx, cont = conts[q][k]
                hs = lm.model(input_ids=torch.tensor([ctx + cont[:j]]), output_hidden_states=True).hidden_states
                if d < len(hs) - 1:                               # HF's last state is normed; the lens reads it raw
                    np.testing.assert_allclose(H[m, d], hs[d][0, -1].detach().numpy(), atol=1e-4)
            with torch.no_grad():
                zz = lm.model.get_output_embeddings()(a.final_norm(torch.as_tensor(H[:, d]))).double() * a.logit_scale
                if a.softcap:
                    zz = a.softcap * torch.tanh(zz / a.softcap)
            want = np.full(z.shape, np.nan)
            for q, s in enumerate(S):
                for k in range(s.n_options):
                    cont, tot = conts[q][k][1], 0.0
                    for m in np.flatnonzero(trie.question == q):   # the nodes on this option's path
                        j, kids = trie.prefix[m], [int(x) for x in trie.tok[m] if x >= 0]
                        if len(cont) > j and cont[:j] == conts[q][trie.option[m]][1][:j] and cont[j] in kids:
                            r = zz[m, kids].numpy()
                            tot += r[kids.index(cont[j])] - r.max() - np.log(np.exp(r - r.max()).sum())
                    want[q, k] = tot
            np.testing.assert_allclose(z, want, atol=1e-4, equal_nan=True)


def test_trie_separates_options_that_share_their_first_tokens():
    """Options that share first tokens tie on a first-token readout; on the trie they are told apart where they
    part. With distinct first tokens a question is one node at the context's last token (the first-token readout)."""
    from dataclasses import replace
    lm, S = tiny_lm("llama", num_layers=3), tiny_samples(6)
    shared = [replace(s, continuations=tuple(" the big" + c for c in s.continuations)) for s in S]
    for samples in (S, shared):
        trie, seqs, st = option_trie(lm, samples, "cloze")
        H = last_states(lm, seqs, 4)
        z = trie.scores(option_logits(Lens(lm.anatomy), torch.as_tensor(H[:, -1]), torch.as_tensor(trie.tok)))
        z = z.numpy()
        for q, s in enumerate(samples):
            v = z[q, :s.n_options]
            assert len(set(np.round(v, 9))) == len(set(s.continuations)), (q, v)   # no tie between distinct options
            conts = [encode_pair(lm.tokenizer, c, t, True)[1] for c, t in zip(s.contexts, s.continuations)]
            if len({c[0] for c in conts}) == len(conts):
                assert list(trie.prefix[trie.question == q]) == [0]
    assert st["questions_sharing_a_first_token"] == 1.0 and (trie.prefix > 0).all()   # " the big ..." everywhere


def test_fitting_lowers_the_training_kl_and_keeps_identity_reference():
    lm, S = tiny_lm("llama", num_layers=3), tiny_samples(12)
    (t_tr, s_tr, _), (t_ev, s_ev, _) = option_trie(lm, S[:8], "letter"), option_trie(lm, S[8:], "letter")
    H_tr, H_ev = last_states(lm, s_tr, 4), last_states(lm, s_ev, 4)
    P = _softmax(score(lm, S, "letter", progress=False).scores[:, -1])
    lens = Lens(lm.anatomy)
    P_tr, P_ev = P[:8, :t_tr.K], P[8:, :t_ev.K]              # each split's trie has its own option count
    r = fit_tuned(lens, H_tr, t_tr, P_tr, H_ev, t_ev, P_ev, rank=4, steps=100)
    assert r["scores"].shape == (4, H_tr.shape[1], t_ev.K)
    for d in range(H_tr.shape[1] - 1):
        ident = float(_kl(torch.as_tensor(P_tr, dtype=torch.float32),
                          t_tr.scores(option_logits(lens, torch.as_tensor(H_tr[:, d]), torch.as_tensor(t_tr.tok)))))
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
    # the chance levels of the evaluation half (the questions its accuracies are measured on)
    from prunelens.metrics.chance import chance_levels
    from prunelens.readout.run import split_samples
    from prunelens.tasks import load_task
    ev = split_samples(load_task(str(spec)).samples, None, 0)[1]
    assert r["chance_levels"] == chance_levels([q.gold for q in ev], [q.n_options for q in ev])
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
    # tuned and logit lens with planted decision depths (prediction rule: from depth t on, each question's answer
    # is the final one); the paired difference of medians is t_tuned - t_lens, read on the same questions
    def planted(t):
        s = rng.normal(size=(N, D, K))
        s[np.arange(N), t:, gold] += 20.0
        return s
    lens = planted(3)
    for t_tuned, want in ((1, "holds"), (4, "does not hold"), (3, "not resolved at this n")):
        a = readout_answers({"logit_lens": est([3, 4])}, probe, shuffled, gold, n_opt, n_boot=200, lens=lens,
                            tuned=planted(t_tuned))
        assert a[0]["status"] == "holds" and a[0]["depths"] == [0, 1, 2] and a[0]["ci"][0] > 0.5
        assert a[1]["status"] == want and a[1]["key"] == "tuned_earlier"
        assert a[1]["ci"][0] <= t_tuned - 3 <= a[1]["ci"][1], a[1]
    # half the questions decided at 1, half at 4, in both readouts but on different questions: the medians tie
    # in distribution but the paired draw cannot order them -> not resolved
    mix = lambda m: np.where(m[:, None, None], planted(1), planted(4))   # noqa: E731
    m = rng.random(N) < 0.5
    a = readout_answers({"logit_lens": est([3, 4])}, probe, shuffled, gold, n_opt, n_boot=200, lens=mix(m),
                        tuned=mix(~m))
    assert a[1]["status"] == "not resolved at this n", a[1]
    # a probe that reads exactly what its control reads: the difference is 0 for every question, the CI [0, 0]
    a = readout_answers({"logit_lens": est([3, 4])}, shuffled.copy(), shuffled, gold, n_opt, n_boot=200)
    assert a[0]["status"] == "does not hold" and a[1]["status"] == "not enough data"
    a = readout_answers({"logit_lens": est([None, None], "not identified at this n")}, probe, shuffled, gold, n_opt)
    assert a[0]["status"] == "not enough data"
    # a tuned lens that settles early on answers at chance (HellaSwag's option-restricted lenses read only the tokens
    # where the endings part): it decides nothing, so "earlier" is not asked, however its depths compare
    final = lambda s: {"acc": [float((s[:, -1].argmax(-1) == gold).mean())]}   # noqa: E731
    noise = rng.normal(size=(N, D, K))
    noise[:, 1:] = noise[:, 1:2]                                # settles at depth 1 on a random answer
    a = readout_answers({"logit_lens": {**est([3, 4]), **final(lens)}, "tuned_lens": final(noise)}, probe, shuffled,
                        gold, n_opt, n_boot=200, lens=lens, tuned=noise)
    assert a[1]["status"] == "not enough data" and "tuned lens reads no decision" in a[1]["evidence"]
    good = planted(1)
    a = readout_answers({"logit_lens": {**est([3, 4]), **final(lens)}, "tuned_lens": final(good)}, probe, shuffled,
                        gold, n_opt, n_boot=200, lens=lens, tuned=good)
    assert a[1]["status"] == "holds"
    # training alone: the tuned lens against the untrained option lens, the same paired rule (planted 1 vs 2)
    opt = planted(2)
    a = readout_answers({"logit_lens": {**est([3, 4]), **final(lens)}, "tuned_lens": final(good)}, probe, shuffled,
                        gold, n_opt, n_boot=200, lens=lens, tuned=good, option_lens=opt)
    assert a[2]["key"] == "tuned_vs_option_lens" and a[2]["status"] == "holds"
    assert a[2]["ci"][0] - 0.05 <= -1 <= a[2]["ci"][1] + 0.05      # planted one depth earlier (medians read between depths)
    a = readout_answers({"logit_lens": {**est([3, 4]), **final(lens)}, "tuned_lens": final(good)}, probe, shuffled,
                        gold, n_opt, n_boot=200, lens=lens, tuned=good, option_lens=good.copy())
    assert a[2]["status"] == "does not hold"                                       # the same scores: exactly 0


def test_letter_probe_equals_sklearn_logistic_regression():
    """The letter-format probe is L2-penalised multinomial logistic regression on standardised features: mean
    cross-entropy + lam * ||W||^2, intercept free. scikit-learn minimises C * sum CE + ||W||^2 / 2 with a free
    intercept, the same objective at C = 1 / (2 lam n): both must find the same probabilities."""
    from sklearn.linear_model import LogisticRegression
    from prunelens.readout.probe import fit_probe
    rng = np.random.default_rng(3)
    n, d, K, lam = 300, 12, 4, 1e-2
    y = rng.integers(0, K, n)
    F = rng.normal(size=(n, d)) + 0.8 * np.eye(K, d)[y]            # a weak, real signal
    predict = fit_probe(F, y, np.ones((n, K), bool), lam=lam, iters=500)
    Z = (F - F.mean(0)) / F.std(0, ddof=1)                          # the probe's standardisation (torch std: n - 1)
    ref = LogisticRegression(C=1 / (2 * lam * n), tol=1e-10, max_iter=5000).fit(Z, y)
    mine = torch.softmax(torch.as_tensor(predict(F)), -1).numpy()
    assert np.abs(mine - ref.predict_proba(Z)).max() < 1e-4


def test_readout_logit_lens_pass_resumes_from_its_journal(tmp_path, monkeypatch):
    """Killed after its logit-lens pass (here: in the tuned lens's fit), a journaled readout resumes without scoring
    that pass again and ends with the numbers of an uninterrupted run without a journal."""
    import prunelens.analyze as A
    import prunelens.readout.run as R
    from prunelens.journal import Journal
    lm, S = tiny_lm("llama", num_layers=3), tiny_samples(16)
    kw = dict(steps=10, folds=2, n_boot=30, progress=False, log=lambda *_: None)
    plain = readouts(lm, S[:8], S[8:], "cloze", **kw)

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(R, "fit_tuned", killed)
        with pytest.raises(KeyboardInterrupt):
            readouts(lm, S[:8], S[8:], "cloze", journal=Journal(tmp_path, "readout", {"k": 1}), **kw)
    calls, real = [], A.score
    monkeypatch.setattr(A, "score", lambda *a, **k: calls.append(1) or real(*a, **k))
    j = Journal(tmp_path, "readout", {"k": 1})
    assert j.resumed == 1
    again = readouts(lm, S[:8], S[8:], "cloze", journal=j, **kw)
    assert calls == []                                   # the logit lens came from the journal
    assert again["readouts"] == plain["readouts"] and again["answers"] == plain["answers"]
