"""Restore-patching and skip effects (prunelens/causal), each against an independent computation: plain HF forwards
of models whose layer lists are built here by hand."""

import numpy as np
import pytest
import torch

from helpers import hand_model, plain_cloze_scores, tiny_lm, tiny_samples, with_and_without_prefix
from prunelens.analyses.ablation import _correct_and_dm
from prunelens.causal import matching_depths, patch_residual, record_residuals, restore_curve, skip_effects
from prunelens.causal.restore import _decision_rows, _patcher
from prunelens.engine.capture import capture_residuals
from prunelens.engine.score import score
from prunelens.model.surgery import keep_from_remove, pruned_view


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_restore_all_is_dense_prefix_then_pruned_suffix(family):
    """Every position restored at pruned depth j == dense layers 0..keep[j]-1 then the pruned layers keep[j:]
    (cloze: context pass, KV-cache copies, continuation pass), against a plain HF forward of that model."""
    lm, S = tiny_lm(family, num_layers=6), tiny_samples(5)
    L, remove = 6, [1, 3]
    keep = keep_from_remove(remove, L)                     # [0, 2, 4, 5]
    match = matching_depths(keep, L)
    assert match == [0, 2, 4, 5, 6]
    with record_residuals(lm.anatomy, sorted(set(match))) as (store, calls):
        score(lm, S, "cloze", depths=[L], batch_size=2, progress=False)
    assert any(calls.kinds) and not all(calls.kinds)       # both context and continuation forwards were recorded
    for j in (1, 2, 3):
        with pruned_view(lm, keep), patch_residual(lm.anatomy, j, _patcher("restore_all", store[match[j]], {}, None)):
            got = score(lm, S, "cloze", depths=[len(keep)], batch_size=2, progress=False).scores[:, -1]
        ref = plain_cloze_scores(hand_model(lm.model, list(range(match[j])) + keep[j:]), lm.tokenizer, S)[:, -1]
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
        # and it is not the plain pruned model
        plain = plain_cloze_scores(hand_model(lm.model, keep), lm.tokenizer, S)[:, -1]
        assert np.abs(got - plain)[np.isfinite(got)].max() > 1e-3


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_restoring_the_last_depth_gives_the_dense_logits(family):
    lm = tiny_lm(family, num_layers=6)
    ids = torch.tensor([[1, 17, 40, 99, 23, 5, 61], [1, 8, 9, 10, 11, 12, 13]])
    keep = keep_from_remove([2, 3, 4], 6)
    with record_residuals(lm.anatomy, [6]) as (store, _):
        dense = lm.model(input_ids=ids).logits
    with pruned_view(lm, keep):
        pruned = lm.model(input_ids=ids).logits
        with patch_residual(lm.anatomy, len(keep), lambda k, c, h: store[6][k]):
            restored = lm.model(input_ids=ids).logits
    assert (restored - dense).abs().max().item() <= 1e-4
    assert (pruned - dense).abs().max().item() > 1e-2
    with pruned_view(lm, keep):                            # hooks are gone after the context
        assert torch.equal(lm.model(input_ids=ids).logits, pruned)


def test_decision_modes_touch_only_the_last_context_position_and_norm_keeps_direction():
    lm = tiny_lm("llama", num_layers=5)
    ids = torch.tensor([[1, 17, 40, 99, 23, 5], [1, 8, 9, 10, 11, 12]])
    pos = torch.arange(6)[None].expand(2, 6)
    keep = keep_from_remove([1, 2], 5)
    with record_residuals(lm.anatomy, [3]) as (store, calls):
        lm.anatomy.base(input_ids=ids)
    D = store[3][0]
    other, mean = _decision_rows(store[3], calls.kinds)
    with pruned_view(lm, keep):
        with capture_residuals(lm.anatomy, pos, [1]) as c0:
            lm.anatomy.base(input_ids=ids)
        h = c0.stacked()[:, 0]                             # pruned residual at pruned depth 1 [B, T, d]
        for mode in ("restore_decision", "other_decision", "mean_decision", "norm_decision", "norm_all"):
            with patch_residual(lm.anatomy, 1, _patcher(mode, store[3], other, mean)), \
                    capture_residuals(lm.anatomy, pos, [1]) as c:
                lm.anatomy.base(input_ids=ids)
            g = c.stacked()[:, 0]
            if mode != "norm_all":
                assert torch.equal(g[:, :-1], h[:, :-1])   # only the decision position changed
            want = {"restore_decision": D[:, -1], "other_decision": D[[1, 0], -1],
                    "mean_decision": D[:, -1].mean(0).expand(2, -1)}.get(mode)
            if want is not None:
                torch.testing.assert_close(g[:, -1], want, rtol=0, atol=1e-6)
            else:                                          # magnitude modes: dense norms, pruned directions
                sl = slice(None) if mode == "norm_all" else slice(-1, None)
                torch.testing.assert_close(g[:, sl].norm(dim=-1), D[:, sl].norm(dim=-1), rtol=1e-5, atol=1e-5)
                cos = torch.nn.functional.cosine_similarity(g[:, sl], h[:, sl], dim=-1)
                assert cos.min().item() > 1 - 1e-5


def test_cloze_decision_restore_at_the_output_gives_the_dense_first_token_scores():
    """Options of one token each: a cloze score is then the log-prob read at the decision position only, so writing
    the dense output there (restore_decision at the pruned output depth) must give the dense scores exactly, through
    the engine's context pass; multi-token options keep their pruned continuation scores."""
    from prunelens.tasks.base import MCSample
    lm = tiny_lm("llama", num_layers=5)
    S = [MCSample(str(i), (s.contexts[0],) * 4, (" A", " B", " C", " D"), ("A", "B", "C", "D"), s.gold % 4, "x")
         for i, s in enumerate(tiny_samples(6))]
    keep = keep_from_remove([1, 2], 5)
    with record_residuals(lm.anatomy, [5]) as (store, calls):
        dense = score(lm, S, "cloze", depths=[5], batch_size=4, progress=False).scores[:, -1]
    assert not any(calls.kinds)                            # single-token options: no continuation forwards
    other, mean = _decision_rows(store[5], calls.kinds)
    with pruned_view(lm, keep):
        pruned = score(lm, S, "cloze", depths=[3], batch_size=4, progress=False).scores[:, -1]
        with patch_residual(lm.anatomy, 3, _patcher("restore_decision", store[5], other, mean)):
            got = score(lm, S, "cloze", depths=[3], batch_size=4, progress=False).scores[:, -1]
    np.testing.assert_allclose(got, dense, atol=1e-5)
    assert np.abs(pruned - dense).max() > 1e-3


def test_other_question_rows_never_come_from_the_same_row():
    kinds = [False, True, False, False]
    stored = [torch.arange(3 * 2 * 4, dtype=torch.float32).reshape(3, 2, 4) + 100 * k for k in range(4)]
    other, mean = _decision_rows(stored, kinds)
    own = torch.cat([stored[k][:, -1] for k in (0, 2, 3)])
    got = torch.cat([other[k] for k in (0, 2, 3)])
    assert set(other) == {0, 2, 3}
    assert not any(torch.equal(a, b) for a, b in zip(own, got))
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, own.tolist()))   # a permutation of the rows
    torch.testing.assert_close(mean, own.mean(0))


def test_restore_curve_end_to_end_matches_independent_models_and_its_invariants():
    lm, S = tiny_lm("llama", num_layers=6), tiny_samples(8)
    remove = [1, 2, 4]
    res = restore_curve(lm, S, "cloze", remove, tp=4, n_boot=200, batch_size=4, progress=False)
    keep, Lp = res["kept"], res["pruned_layers"]
    assert keep == [0, 3, 5] and Lp == 3

    def outcome(layer_ids):
        s = plain_cloze_scores(hand_model(lm.model, layer_ids), lm.tokenizer, S)[:, -1:]
        return _correct_and_dm(s, np.array([x.gold for x in S]), np.array([x.n_options for x in S]), "logit")

    dense, pruned = outcome(list(range(6))), outcome(keep)
    assert res["dense"]["acc"] == pytest.approx(dense[:, 0].mean()) and res["dense"]["dm"] == pytest.approx(dense[:, 1].mean(), abs=1e-5)
    assert res["pruned"]["dm"] == pytest.approx(pruned[:, 1].mean(), abs=1e-5)
    ra = res["curves"]["restore_all"]
    assert [c["pruned_depth"] for c in ra] == [0, 1, 2, 3] and [c["dense_depth"] for c in ra] == [0, 3, 5, 6]
    assert [c["phase"] for c in ra] == ["silent", "silent", "decisive", "decisive"]
    assert ra[0]["d_dm"] == 0 and ra[0]["d_acc"] == 0                  # layer 0 kept: depth 0 is the embeddings
    assert ra[-1]["share_dm"] == pytest.approx(1.0, abs=1e-5)          # the last depth restores the dense model
    for c in ra:
        want = outcome(list(range(c["dense_depth"])) + keep[keep.index(c["dense_depth"]):] if c["dense_depth"] < 6
                       else list(range(6)))
        assert c["dm"] == pytest.approx(want[:, 1].mean(), abs=1e-5)
    for c in res["curves"]["norm_all"] + res["curves"]["restore_decision"]:
        assert c["d_dm_ci"][0] <= c["d_dm"] <= c["d_dm_ci"][1]
    qs = {a.get("key"): a for a in res["answers"]}
    # removed Silent layers (< tp = 4): 1, 2; the first kept layer after them is 3 = pruned depth 1, and no removed
    # Decisive layer (4) lies below it: the questions are answered there, from that depth's cells
    assert qs["silent"]["pruned_depth"] == 1 and qs["magnitude"]["pruned_depth"] == 1
    assert qs["silent"]["share_dm"] == pytest.approx(ra[1]["share_dm"])
    gap_holds = res["gap"]["dm_ci"][0] > 0
    lo, hi = ra[1]["share_dm_ci"]
    assert qs["silent"]["status"] == ("not resolved at this n" if not gap_holds else "holds" if lo >= 0.5 else
                                      "does not hold" if hi < 0.5 else "not resolved at this n")
    oc = res["curves"]["other_decision"][1]
    assert qs["control"]["status"] == ("holds" if oc["d_dm_ci"][1] <= 0 else "does not hold" if oc["d_dm_ci"][0] > 0
                                       else "not resolved at this n")
    mc = res["curves"]["mean_decision"][1]
    assert qs["mean_control"]["status"] == ("holds" if mc["d_dm_ci"][1] <= 0 else "does not hold"
                                            if mc["d_dm_ci"][0] > 0 else "not resolved at this n")
    # one control added to a finished run: the same cell, no phase split repeated
    one = restore_curve(lm, S, "cloze", remove, tp=4, modes=("mean_decision",), depths=[1], phases=False, n_boot=200,
                        batch_size=4, progress=False)
    q1 = {a["key"]: a for a in one["answers"]}
    assert "phase_split" not in one and q1["phase"]["status"] == "not enough data"
    assert q1["mean_control"]["d_dm"] == pytest.approx(mc["d_dm"], abs=1e-6) and "control" not in q1
    # the phase split: the model without only the removed Silent layers (1, 2) / only the Decisive one (4)
    ps = res["phase_split"]
    assert ps["silent_removed"] == [1, 2] and ps["decisive_removed"] == [4]
    for name, layers in (("without_silent_only", [0, 3, 4, 5]), ("without_decisive_only", [0, 1, 2, 3, 5])):
        want = outcome(layers)
        assert ps[name]["dm"] == pytest.approx(want[:, 1].mean(), abs=1e-5)
        assert ps[name]["d_acc"] == pytest.approx(want[:, 0].mean() - dense[:, 0].mean(), abs=1e-9)
    # the two against each other, per question: how much more removing only the Silent layers costs
    diff = outcome([0, 1, 2, 3, 5]) - outcome([0, 3, 4, 5])
    sv = ps["silent_vs_decisive"]
    assert sv["d_acc"] == pytest.approx(diff[:, 0].mean(), abs=1e-9) and sv["d_dm"] == pytest.approx(diff[:, 1].mean(), abs=1e-5)
    assert sv["d_acc_ci"][0] <= sv["d_acc"] <= sv["d_acc_ci"][1]
    lo, hi = sv["d_acc_ci"]
    assert qs["phase"]["status"] == ("holds" if lo > 0 else "does not hold" if hi <= 0 else "not resolved at this n")
    # every removed layer Silent (tp = 5): restoring after them is the dense model itself, which answers nothing
    # about the phases; the magnitude question and the control are still asked there
    from prunelens.causal.restore import answers
    qs5 = {a["key"]: a for a in answers({**res, "tp": 5})}
    assert qs5["silent"]["status"] == "not enough data" and "by construction" in qs5["silent"]["evidence"]
    assert qs5["magnitude"]["pruned_depth"] == 2 and qs5["magnitude"]["status"] != "not enough data"
    # nothing Silent removed (layers 0, 1 kept, tp = 2): the Silent depths are identities and answer nothing
    res = restore_curve(lm, S, "cloze", [2, 3], tp=2, modes=("restore_all",), n_boot=50, batch_size=4, progress=False)
    assert {a["status"] for a in res["answers"]} == {"not enough data"}


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_below_the_first_cut_the_restore_and_norm_modes_are_the_pruned_model(family):
    """restore_curve takes the pruned outcome for these cells without a pass: check the premise with patched passes
    (gemma3: layers of two attention types)."""
    lm, S = tiny_lm(family, num_layers=5), tiny_samples(6)
    keep = keep_from_remove([3], 5)                                     # [0, 1, 2, 4]: depths 0..3 match
    res = restore_curve(lm, S, "cloze", [3], depths=[0, 2, 3], n_boot=20, batch_size=3, progress=False)
    with record_residuals(lm.anatomy, [0, 2]) as (store, _):
        score(lm, S, "cloze", depths=[5], batch_size=3, progress=False)
    with pruned_view(lm, keep):
        base = score(lm, S, "cloze", depths=[4], batch_size=3, progress=False)
        for j in (0, 2):
            for m in ("restore_decision", "norm_all", "norm_decision"):
                with patch_residual(lm.anatomy, j, _patcher(m, store[j], {}, None)):
                    got = score(lm, S, "cloze", depths=[4], batch_size=3, progress=False)
                assert np.array_equal(got.scores, base.scores, equal_nan=True), (j, m)
                cell = next(c for c in res["curves"][m] if c["pruned_depth"] == j)
                assert cell["d_dm"] == 0 and cell["d_acc"] == 0
    assert any(c["d_dm"] != 0 for c in res["curves"]["restore_decision"] if c["pruned_depth"] == 3)


def test_the_silent_restore_depth_gives_back_every_removed_silent_layer_and_no_decisive_one():
    from prunelens.causal.restore import silent_restore_depth
    keep = [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]                    # removed 8, 9 just before tp = 10
    assert silent_restore_depth(keep, [8, 9], 10) == (8, "")   # pruned depth 8 = dense depth 10: 8, 9 given back
    j, why = silent_restore_depth([0, 1, 2, 5, 6], [3, 4], 4)  # 3 is Silent, 4 Decisive, no kept layer between
    assert j is None and "Decisive layers [4]" in why
    assert silent_restore_depth([0, 1, 2], [3, 4], 2)[0] is None           # nothing Silent removed
    assert silent_restore_depth([0, 2, 3], [1], 3) == (1, "")
    j, why = silent_restore_depth([0, 1], [2, 3], 4)                         # only the output is left: trivial
    assert j is None and "dense model itself" in why


def test_cut_depths_holds_every_cut_and_the_silent_restore_depth():
    from prunelens.causal.restore import cut_depths, silent_restore_depth
    keep = keep_from_remove([12, 13, 14, 17, 25], 30)      # the SmolLM2 HellaSwag removal set: 25 layers kept
    assert cut_depths(keep) == [0, 12, 14, 21, 25]           # runs of kept layers start at 0, 12, 14, 21; output 25
    assert cut_depths(list(range(4))) == [0, 4]             # nothing removed
    rng = np.random.default_rng(0)
    for _ in range(200):                                    # the depth the questions are decided at is always patched
        L = int(rng.integers(3, 40))
        rem = sorted(rng.choice(L, size=int(rng.integers(1, L)), replace=False).tolist())
        keep = keep_from_remove(rem, L)
        j, _ = silent_restore_depth(keep, rem, int(rng.integers(0, L + 1)))
        assert j is None or j in cut_depths(keep)


def test_restore_curve_refuses_bad_input_before_compute():
    lm, S = tiny_lm("llama", num_layers=4), tiny_samples(3)
    with pytest.raises(ValueError, match="fixed --batch-size"):
        restore_curve(lm, S, "cloze", [1], batch_size="auto")
    with pytest.raises(ValueError, match="unknown mode"):
        restore_curve(lm, S, "cloze", [1], modes=("restore_everything",))
    with pytest.raises(ValueError, match="pruned depths must lie in 0..3"):
        restore_curve(lm, S, "cloze", [1], depths=[5])
    with pytest.raises(ValueError, match="given more than once"):
        restore_curve(lm, S, "cloze", [1, 1])


def test_skip_effects_against_hand_built_models():
    lm, S = tiny_lm("llama", num_layers=5), tiny_samples(4)
    res = skip_effects(lm, S, "letter", layers=[1, 3], decision=True, n_boot=100, progress=False)
    rel, ratio = np.asarray(res["rel_change"]), np.asarray(res["norm_ratio"])
    assert rel.shape == (2, 5)
    assert np.all(rel[0, :1] == 0) and np.all(ratio[0, :1] == 1) and np.isnan(rel[0, 1])
    assert np.all(rel[1, :3] == 0) and np.isnan(rel[1, 3]) and np.all(rel[0, 2:] > 0)
    # independent: one unpadded HF forward per prompt, updates from output_hidden_states (raw for all but the last
    # layer, whose HF state is normed: compare layers 0..L-2)
    from prunelens.analyses.states import prompt_ids
    ids, _ = prompt_ids(lm, S, "letter")

    def updates(model):
        out = []
        for x in ids:
            hs = model(input_ids=torch.tensor([x]), output_hidden_states=True).hidden_states
            out.append(torch.stack([hs[m + 1][0] - hs[m][0] for m in range(len(hs) - 2)]))   # [L'-1, T, d]
        return out

    with torch.no_grad():
        du = updates(lm.model)
        for r, i in enumerate([1, 3]):
            keep = [m for m in range(5) if m != i]
            su = updates(hand_model(lm.model, keep))
            for jj, m in enumerate(keep[:-1]):
                # BOS (position 0: the tiny tokenizer adds it) is left out, as skip_effects does
                num = sum((s[jj, 1:] - d[m, 1:]).norm(dim=-1).sum().item() for s, d in zip(su, du))
                den = sum(d[m, 1:].norm(dim=-1).sum().item() for d in du)
                mag = sum(s[jj, 1:].norm(dim=-1).sum().item() for s in su)
                assert rel[r, m] == pytest.approx(num / den, rel=1e-4, abs=1e-6)
                assert ratio[r, m] == pytest.approx(mag / den, rel=1e-4, abs=1e-6)
    dec = {row["layer"]: row for row in res["decision"]}
    assert set(dec) == {1, 3} and all(row["d_acc_ci"][0] <= row["d_acc"] <= row["d_acc_ci"][1] for row in dec.values())


def test_cli_restore_and_skips_write_json_and_figures(tmp_path, capsys):
    import json

    from helpers import write_tiny_qa
    from prunelens.cli import main
    from tiny import save_model

    ckpt = save_model("llama", tmp_path / "m", num_layers=4)
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 8)
    common = ["--model", str(ckpt), "--device", "cpu", "--tasks", str(spec), "--n-boot", "50"]
    # a trajectory whose accuracy falls below halfway to chance at its second step: --ratio critical picks it
    traj = {"num_layers": 4, "task": str(spec), "chance": 0.25, "dense": {"acc": 0.75, "removed": []},
            "steps": [{"removed": [2], "ratio": 0.25, "acc": 0.7}, {"removed": [2, 1], "ratio": 0.5, "acc": 0.4},
                      {"removed": [2, 1, 0], "ratio": 0.75, "acc": 0.25}]}
    (tmp_path / "t.json").write_text(json.dumps(traj))
    assert main(["restore", *common, "--trajectory", str(tmp_path / "t.json"), "--ratio", "critical", "--tp", "4",
                 "--modes", "restore_all,norm_all,other_decision", "--depths", "cuts", "--out", str(tmp_path / "r")]) == 0
    r = json.loads((tmp_path / "r" / "restore.json").read_text())
    assert r["removed"] == [1, 2] and "critical ratio 0.500" in r["removal_source"]
    assert r["depths"] == [0, 1, 2] == [c["pruned_depth"] for c in r["curves"]["norm_all"]]   # keep [0, 3]
    from prunelens.metrics.chance import chance_levels
    from prunelens.tasks import load_task
    qs = load_task(str(spec)).samples
    assert r["chance_levels"] == chance_levels([q.gold for q in qs], [q.n_options for q in qs])
    assert set(r["curves"]) == {"restore_all", "norm_all", "other_decision"}
    assert (tmp_path / "r" / "restore.png").exists() and (tmp_path / "r" / "restore.svg").exists()
    assert "restoring the Silent-Phase states" in capsys.readouterr().out
    assert main(["skips", *common, "--layers", "0,2", "--out", str(tmp_path / "s")]) == 0
    s = json.loads((tmp_path / "s" / "skips.json").read_text())
    assert s["skipped"] == [0, 2] and len(s["decision"]) == 2 and (tmp_path / "s" / "skips.png").exists()
    # the report renders both sections from the JSONs, with their figures and answers
    from prunelens.report.html import build_report
    html = build_report([tmp_path / "r", tmp_path / "s"], tmp_path / "rep.html").read_text()
    for needle in ('id="restore"', 'id="skips"', "restoring the Silent-Phase states", "Restore-patching", "Skip effects"):
        assert needle in html
    assert html.count("<img") >= 2 and ">None<" not in html and " None " not in html
    # bad input: one line, exit 2, nothing written
    capsys.readouterr()
    assert main(["restore", *common, "--remove", "1", "--modes", "restore_everything", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "unknown mode" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["restore", *common, "--out", str(tmp_path / "bad")]) != 0
    assert "exactly one of --remove and --trajectory" in capsys.readouterr().err
    assert main(["restore", *common, "--remove", "1", "--depths", "some", "--out", str(tmp_path / "bad")]) == 2
    assert "or 'cuts'" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_restore_passes_from_the_stored_pruned_prefix_equal_patched_whole_passes():
    """Every mode: a pass patched at depth j that starts at j from the patched stored pruned residual gives the numbers
    of the whole patched pass, and layer 0 then runs in the dense and pruned passes only."""
    lm, S = tiny_lm("llama", num_layers=6), tiny_samples(8)
    modes = ("restore_all", "restore_decision", "norm_all", "other_decision", "mean_decision", "norm_decision")
    whole, pre, saved, one = with_and_without_prefix(lm, lambda on: restore_curve(
        lm, S, "cloze", [2, 3], tp=4, modes=modes, n_boot=50, batch_size=4, progress=False, dense_prefix=on), S)
    # kept [0, 1, 4, 5]: patched passes at pruned depths 1..3 start there; restore_all runs at none of the three (at
    # 1 it is the pruned model, at 2 and 3 dense layers 0..3 or 0..4 and then the rest: the dense model), and at
    # depth 1 (nothing removed below it) the other restore and norm modes are the pruned model too: no pass
    assert saved == (6 * 3 - 3 - 3) * one > 0
    for m in modes:
        for a, b in zip(whole["curves"][m], pre["curves"][m]):
            assert (a["pruned_depth"], a["acc"]) == (b["pruned_depth"], b["acc"])
            assert a["dm"] == pytest.approx(b["dm"], abs=1e-5)
    assert any(abs(c["dm"] - whole["pruned"]["dm"]) > 1e-3 for c in whole["curves"]["restore_decision"])


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_skip_effects_from_the_dense_prefix_equal_whole_skipped_passes(family):
    """A skip of layer i runs layers i+1.. from the dense h_i: every update change, norm ratio and decision equals
    the whole skipped forward's (which the hand-built test above checks), on a model with per-layer attention types
    too (Gemma 3: sliding / global)."""
    lm, S = tiny_lm(family, num_layers=5), tiny_samples(6)
    kw = dict(n_boot=50, batch_size=4, progress=False)
    pre, whole = (skip_effects(lm, S, "cloze", dense_prefix=on, **kw) for on in (True, False))
    np.testing.assert_allclose(pre["rel_change"], whole["rel_change"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pre["norm_ratio"], whole["norm_ratio"], rtol=1e-5, atol=1e-7)
    for a, b in zip(pre["decision"], whole["decision"]):
        assert a["acc"] == b["acc"] and a["dm"] == pytest.approx(b["dm"], abs=1e-5)
    assert np.nanmax(np.asarray(whole["rel_change"], dtype=float)) > 1e-3


def test_critical_removal_refuses_a_running_trajectory():
    import pytest

    from prunelens.causal.run import critical_removal
    traj = {"num_layers": 4, "chance": 0.25, "dense": {"acc": 0.75, "removed": []}, "status": "complete",
            "steps": [{"removed": [2], "ratio": 0.25, "acc": 0.7}, {"removed": [2, 1], "ratio": 0.5, "acc": 0.4}]}
    assert critical_removal(traj) == ([2, 1], 0.5)
    with pytest.raises(ValueError, match="still running"):
        critical_removal({**traj, "status": "running"})


def test_a_running_skip_trajectory_gives_no_removal_set_and_no_controls(tmp_path):
    import json

    import pytest

    from prunelens.analyses import trajectories as T
    from prunelens.analyses.run import run_controls
    traj = {"num_layers": 4, "chance": 0.25, "dense": {"acc": 0.75, "removed": []}, "params": {"skip": True},
            "steps": [{"removed": [2], "ratio": 0.25, "acc": 0.7}, {"removed": [2, 1], "ratio": 0.5, "acc": 0.4}]}
    assert T.removed_at({**traj, "status": "complete"}, 0.5) == [2, 1]
    assert T.removed_at({**traj, "status": "running", "params": {}}, 0.5) == [2, 1]   # plain IP only appends
    with pytest.raises(ValueError, match="still running"):
        T.removed_at({**traj, "status": "running"}, 0.5)
    (tmp_path / "t.json").write_text(json.dumps({**traj, "status": "running"}))
    with pytest.raises(ValueError, match="still running"):                 # before any model is loaded
        run_controls(tmp_path / "c", model="no-such-model", trajectory=tmp_path / "t.json")
