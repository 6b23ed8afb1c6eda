"""Transition ablation equals a direct pruned_view + measure, and the configs are the documented window."""
import pytest

from helpers import tiny_lm, tiny_samples, with_and_without_prefix
from prunelens.analyses.ablation import ablation_configs, reference_tp, transition_ablation
from prunelens.analyze import measure
from prunelens.model.surgery import keep_from_remove, pruned_view


def test_configs():
    assert ablation_configs(3, 6) == [[], [1], [2], [3], [4], [1, 2], [2, 3], [3, 4]]
    assert ablation_configs(1, 4, pairs=False) == [[], [0], [1], [2]]           # clipped at layer 0
    assert reference_tp([3, None, 5, 4]) == 4
    with pytest.raises(ValueError):
        reference_tp([None])


def test_equals_direct_pruned_measure():
    lm, S = tiny_lm("qwen2"), tiny_samples(10)
    tasks = {"a": S, "b": S[:6]}
    res = transition_ablation(lm, tasks, "cloze", tp=2, window=(-1, 0), n_boot=50)
    assert [r["removed"] for r in res["rows"]] == [[], [1], [2], [1, 2]]
    L = lm.anatomy.num_layers
    for row in res["rows"]:
        for name, samples in tasks.items():
            keep = keep_from_remove(row["removed"], L)
            with pruned_view(lm, keep):
                m = measure(lm, samples, "cloze", n_boot=50, progress=False)
            assert row["tasks"][name]["acc"] == pytest.approx(m.summary["acc"], abs=1e-12)
            # fp32 lens: the ablation projects the final depth only, this measure every depth, so the GEMM blocks
            # (and the summation order inside them) differ; 1e-6 is far below any reported digit.
            assert row["tasks"][name]["dm_final"] == pytest.approx(m.summary["dm_final"], abs=1e-6)
        assert row["avg_acc"] == pytest.approx(sum(row["tasks"][n]["acc"] for n in tasks) / 2)
        for name in tasks if row["removed"] else ():      # paired change against dense, on the same samples
            c, d = row["tasks"][name], res["rows"][0]["tasks"][name]
            assert c["d_acc"] == pytest.approx(c["acc"] - d["acc"], abs=1e-12)
            assert c["d_dm"] == pytest.approx(c["dm_final"] - d["dm_final"], abs=1e-9)
            assert c["d_acc_ci"][0] <= c["d_acc"] <= c["d_acc_ci"][1]
    assert set(res["task_tp"]) == {"a", "b"}


def test_cli_score_and_margin_reach_the_ablation_and_guard_dense_from(tmp_path, capsys):
    """`ablate --score norm --margin prob` measures every row the way `analyze` did; a dense run measured another
    way (score, or other samples) is refused by --dense-from instead of silently mixing numbers."""
    import json

    from helpers import write_tiny_qa
    from prunelens.cli import main
    from prunelens.model import load_model
    from prunelens.tasks import load_task
    from tiny import save_model

    ckpt = save_model("qwen3", tmp_path / "m")
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 10)
    how = ["--score", "norm", "--margin", "prob"]
    common = ["--model", str(ckpt), "--device", "cpu"]
    assert main(["analyze", *common, "--tasks", str(spec), "--out", str(tmp_path / "dense" / "qa"), *how,
                 "--n-boot", "50"]) == 0
    out = tmp_path / "abl"
    assert main(["ablate", *common, "--tasks", str(spec), "--tp", "2", "--window=-1,0", *how,
                 "--dense-from", str(tmp_path / "dense"), "--out", str(out)]) == 0
    res = json.loads((out / "ablation.json").read_text())
    dense = json.loads((tmp_path / "dense" / "qa" / "analysis.json").read_text())
    assert res["score_kind"] == "norm" and res["margin"] == "prob"
    assert res["rows"][0]["tasks"]["qa"]["acc"] == dense["acc_norm"]
    lm = load_model(str(ckpt), device="cpu")
    S = load_task(str(spec)).samples
    for row in res["rows"][1:]:
        with pruned_view(lm, keep_from_remove(row["removed"], lm.anatomy.num_layers)):
            m = measure(lm, S, "cloze", score_kind="norm", margin="prob", n_boot=50, progress=False)
        assert row["tasks"]["qa"]["acc"] == pytest.approx(m.summary["acc_norm"], abs=1e-12)
        assert row["tasks"]["qa"]["dm_final"] == pytest.approx(m.summary["dm_final"], abs=1e-6)
        # the dense side of the paired change comes from samples.csv: same numbers as the dense row
        assert row["tasks"]["qa"]["d_acc"] == pytest.approx(row["tasks"]["qa"]["acc"] - dense["acc_norm"], abs=1e-12)
        assert row["tasks"]["qa"]["d_dm"] == pytest.approx(row["tasks"]["qa"]["dm_final"] - dense["dm_final"],
                                                           abs=1e-6)
    capsys.readouterr()
    rc = main(["ablate", *common, "--tasks", str(spec), "--tp", "2", "--dense-from", str(tmp_path / "dense"),
               "--score", "raw", "--out", str(tmp_path / "abl_raw")])
    err = capsys.readouterr().err
    assert rc == 2 and "norm" in err and "raw" in err and not (tmp_path / "abl_raw").exists()
    rc = main(["ablate", *common, "--tasks", str(spec), "--tp", "2", *how, "--sample", "8",
               "--dense-from", str(tmp_path / "dense"), "--out", str(tmp_path / "abl_sub")])
    assert rc == 2 and "10" in capsys.readouterr().err
    # same n, other samples (another --seed): caught by the sample ids in samples.csv
    assert main(["analyze", *common, "--tasks", str(spec), "--sample", "8", "--out", str(tmp_path / "d8" / "qa"), *how,
                 "--n-boot", "50"]) == 0
    capsys.readouterr()
    rc = main(["ablate", *common, "--tasks", str(spec), "--tp", "2", *how, "--sample", "8", "--seed", "3",
               "--dense-from", str(tmp_path / "d8"), "--out", str(tmp_path / "abl_seed")])
    assert rc == 2 and "sample ids" in capsys.readouterr().err and not (tmp_path / "abl_seed").exists()


def test_controls_tail_and_angular_against_plain_hf(tmp_path):
    """The tail control at k removes blocks L-k..L-1; its accuracy equals the argmax of summed continuation
    log-probs from a plain HF forward of a copy of the model with those blocks deleted by hand. Gromov's block is the
    argmin of the mean arccos between the last token's HF hidden states n depths apart. The controls.json then serves
    plan-eval as ground truth (one trajectory per method and random seed, same questions)."""
    import copy
    import json

    import numpy as np
    import torch

    from helpers import plain_cloze_scores
    from prunelens.analyses import run as R
    from prunelens.plan.evaluate import from_controls
    from prunelens.tasks import Task
    lm, samples = tiny_lm("llama"), tiny_samples(10)
    L = lm.anatomy.num_layers
    with pytest.MonkeyPatch.context() as mp:        # the analyses load tasks by name; hand them the tiny one
        mp.setattr(R, "_task", lambda *a, **k: Task("tiny", "test", "tests", samples, ("acc",)))
        res = R.run_controls(tmp_path / "c", task="tiny", counts=[1, 2], seeds=(0, 1), lm=lm, progress=False)
    tail = res["methods"]["tail"]["steps"]
    assert [s["removed"] for s in tail] == [[L - 1], [L - 2, L - 1]]
    S = json.loads((tmp_path / "c" / "controls.json").read_text())            # what was written
    assert S["fingerprint"]["samples"] and S["params"]["score"] == "raw"
    for s in tail:
        m = copy.deepcopy(lm.model)
        m.model.layers = torch.nn.ModuleList(m.model.layers[:L - len(s["removed"])])
        m.config.num_hidden_layers = L - len(s["removed"])
        ref = plain_cloze_scores(m, lm.tokenizer, samples)[:, -1]                 # [N, K], final depth
        assert s["acc"] == np.mean([int(np.nanargmax(r) == x.gold) for r, x in zip(ref, samples)])
    # Gromov's block from a plain HF forward per prompt (hidden states at its last token), arccos by hand. HF's last
    # hidden state is normed; the raw last-layer output (the definition used) is read with a hook instead.
    from prunelens.analyses.states import prompt_ids
    ids, _ = prompt_ids(lm, samples, "cloze")
    raw = []
    hook = lm.model.model.layers[-1].register_forward_hook(
        lambda mod, inp, out: raw.append((out[0] if isinstance(out, tuple) else out)[0, -1]))
    try:
        hs = torch.stack([torch.cat([torch.stack(lm.model(torch.tensor([x]), output_hidden_states=True)
                                                 .hidden_states[:-1])[:, 0, -1], raw[-1][None]])
                          for x in ids]).double()                                        # [N, L+1, d]
    finally:
        hook.remove()
    assert len(raw) == len(ids)
    for s in res["methods"]["angular_oneshot"]["steps"]:
        n = len(s["removed"])
        cos = torch.nn.functional.cosine_similarity(hs[:, :L - n + 1], hs[:, n:], dim=-1)   # [N, L-n+1]
        dist = torch.arccos(cos.clamp(-1, 1)).mean(0)
        assert s["removed"] == list(range(int(dist.argmin()), int(dist.argmin()) + n))
    ts = from_controls(S)
    assert [t["params"]["method"] for t in ts] == ["shortgpt", "angular", "tail", "random", "random"]
    assert [len(st["removed"]) for st in ts[3]["steps"]] == [1, 2]
    assert ts[3]["steps"][0]["acc"] == S["methods"]["random"]["steps"][0]["runs"][0]["acc"]


def test_controls_from_the_stored_dense_prefix_equal_whole_passes():
    """With the dense prefix every control pass starts at its first removed layer: the first layer runs only in the
    dense passes, and every accuracy and DM equals the whole-pass run."""
    import numpy as np

    from prunelens.analyses.controls import run_controls
    lm, S = tiny_lm("llama", num_layers=6), tiny_samples(8)
    whole, pre, saved, one = with_and_without_prefix(lm, lambda on: run_controls(
        lm, S, counts=[1, 2, 3], seeds=(0, 1, 2), n_boot=50, batch_size=4, progress=False, dense_prefix=on), S)
    sets = [s["removed"] for m in ("shortgpt_oneshot", "angular_oneshot", "tail") for s in whole["methods"][m]["steps"]]
    sets += [r["removed"] for s in whole["methods"]["random"]["steps"] for r in s["runs"]]
    assert saved == one * sum(0 not in r for r in sets) > 0          # every pass that keeps layer 0 starts later
    for m in whole["methods"]:
        for a, b in zip(whole["methods"][m]["steps"], pre["methods"][m]["steps"]):
            assert a["acc"] == b["acc"]
            np.testing.assert_allclose(a["dm_final"], b["dm_final"], atol=1e-5)


@pytest.mark.parametrize("given", [False, True])
def test_ablation_from_the_stored_dense_prefix_equals_whole_passes(given):
    """Every ablated cell starts at its first removed layer (layer 0 runs in the dense passes only) and equals the
    whole-pass cell; with a reused dense run too (one final-depth pass stores the prefix)."""
    import numpy as np

    from prunelens.analyses.ablation import per_sample, transition_ablation
    from prunelens.analyze import measure
    lm, S = tiny_lm("llama", num_layers=6), tiny_samples(8)
    tasks = {"a": S, "b": S[:5]}
    kw = dict(tp=3, n_boot=50, batch_size=4, progress=False)
    if given:
        ms = {n: measure(lm, s, "cloze", n_boot=50, batch_size=4, progress=False) for n, s in tasks.items()}
        kw.update(dense={n: {**m.summary, "depths": m.depths} for n, m in ms.items()},
                  dense_samples={n: per_sample(m, "raw", "logit") for n, m in ms.items()})
    whole, pre, saved, one = with_and_without_prefix(
        lm, lambda on: transition_ablation(lm, tasks, "cloze", dense_prefix=on, **kw), S)
    # 7 cells per task, none removing layer 0; with a reused dense run each task pays one pass to store the prefix
    # (one = calls of task "a"; task "b" has 5 of its 8 questions)
    b = with_and_without_prefix(lm, lambda on: {}, S[:5])[3]
    assert saved == (7 - given) * (one + b) > 0
    for a, b in zip(whole["rows"], pre["rows"]):
        for t in tasks:
            x, y = a["tasks"][t], b["tasks"][t]
            assert x["acc"] == y["acc"]
            np.testing.assert_allclose([x["dm_final"], x.get("d_dm", 0)], [y["dm_final"], y.get("d_dm", 0)], atol=1e-5)


def test_controls_measure_the_ip_sets_and_pair_every_control_with_them():
    """With an IP trajectory, its sets are measured on the same questions (equal to a plain HF forward of the
    hand-pruned model) and each control's change against IP is the per-question difference, with a paired CI."""
    import numpy as np

    from helpers import hand_model, plain_cloze_scores
    from prunelens.analyses.controls import run_controls
    from prunelens.report.findings import ip_vs_oneshot
    lm, S = tiny_lm("llama", num_layers=5), tiny_samples(10)
    gold = np.array([x.gold for x in S])

    def correct(layers):                               # plain HF, the kept layers only
        m = hand_model(lm.model, list(layers))
        return np.array([np.nanargmax(r) for r in plain_cloze_scores(m, lm.tokenizer, S)[:, -1]]) == gold
    ip_sets = [[2], [1, 2]]
    traj = {"model": "llama", "num_layers": 5, "chance": 0.3, "dense": {"acc": float(correct(range(5)).mean())},
            "steps": [{"removed": r, "ratio": len(r) / 5, "acc": float(correct([i for i in range(5) if i not in r])
                                                                             .mean()), "acc_ci": [0.0, 1.0]}
                      for r in ip_sets]}
    res = run_controls(lm, S, ip_trajectory=traj, seeds=(0, 1), n_boot=200, batch_size=4, progress=False)
    for st in res["methods"]["ip"]["steps"]:
        assert st["acc_here"] == st["acc"]
    for st in res["methods"]["tail"]["steps"]:
        k = len(st["removed"])
        want = (correct(range(5 - k)).astype(float) - correct([i for i in range(5) if i not in ip_sets[k - 1]])).mean()
        assert st["vs_ip"]["d_acc"] == pytest.approx(want, abs=1e-12)
        lo, hi = st["vs_ip"]["d_acc_ci"]
        assert lo <= want <= hi
    assert all("vs_ip" in r for s in res["methods"]["random"]["steps"] for r in s["runs"])
    f = ip_vs_oneshot({"trajectory": [], "controls": [res]})
    assert "paired difference (one-shot - IP)" in f.evidence
    from prunelens.report.html import s_removed
    html = s_removed({"trajectory": [], "controls": [{**res, "model": "llama", "task": "tiny"}]}, None)
    assert "acc - IP (paired, same questions)" in html


def test_default_depth_is_the_median_of_each_tasks_phase_depth():
    """Without tp: every task's depth is its mean-DM TP where identified, else its decision depth (phase_depth),
    read from the dense measurement; the ablation is centred on their median and says where each came from."""
    import numpy as np

    from prunelens.metrics.estimators import phase_depth
    lm, S = tiny_lm("qwen2"), tiny_samples(12)
    tasks = {"a": S, "b": S[:8], "c": S[4:]}
    res = transition_ablation(lm, tasks, "cloze", window=(0, 0), pairs=False, n_boot=50)
    picks = {n: phase_depth(measure(lm, s, "cloze", n_boot=50, progress=False).summary["estimators"])
             for n, s in tasks.items()}
    assert all(picks.values())
    assert res["tp"] == int(round(float(np.median([p["depth"] for p in picks.values()]))))
    for n, p in picks.items():
        assert f"{n}: {p['depth']}, {p['source']}" in res["tp_source"]



def test_default_depth_falls_back_to_the_decision_depth_and_skips_a_task_without_one():
    """Hand-built dense runs (no model pass for the choice): task a's TP is identified (9), b's is not, so its
    decision depth (3) is used and not its raw TP (12); c has estimators but no depth at all and gives none; d was
    stored before the estimators existed and gives its raw TP (5). Median of 9, 3, 5 = 5."""
    from prunelens.analyses.ablation import transition_ablation
    lm, S = tiny_lm("qwen2"), tiny_samples(4)
    est = lambda tp, v, dd: {"mean_dm_tp": {"point": tp, "verdict": v},                          # noqa: E731
                             "decision_depth_pred": {"point": dd, "verdict": "not identified at this n"}}
    row = {"acc": 0.5, "acc_ci": [0, 1], "dm_final": 0.0, "dm_final_ci": [0, 0], "depths": []}
    dense = {"a": {**row, "transition_point": 9, "estimators": est(9, "identified", 4)},
             "b": {**row, "transition_point": 12, "estimators": est(12, "not identified at this n", 3)},
             "c": {**row, "transition_point": None, "estimators": est(None, "not identified at this n", None)},
             "d": {**row, "transition_point": 5}}
    tasks = {n: S for n in dense}
    res = transition_ablation(lm, tasks, "cloze", window=(0, 0), pairs=False, n_boot=20, dense=dense,
                              dense_prefix=False)
    assert res["tp"] == 5
    assert "a: 9, mean_dm_tp (identified)" in res["tp_source"] and "b: 3, decision_depth_pred" in res["tp_source"]
    assert "c: none" in res["tp_source"] and "d: TP 5 (no estimators stored)" in res["tp_source"]
