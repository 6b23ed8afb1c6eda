"""The HTML report: every section that has data renders, every image is an inline data: URI, no external links,
and the findings are computed from the numbers."""
import re

import numpy as np
import pytest

from helpers import tiny_lm, tiny_samples
from prunelens.analyses import run as R
from prunelens.analyze import analyze
from prunelens.report import build_report
from prunelens.report.collect import collect
from prunelens.report.findings import FAILS, HOLDS, NODATA, UNRESOLVED, findings
from prunelens.results import write_json
from prunelens.tasks import Task


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    lm, S = tiny_lm("llama"), tiny_samples(10)
    task = Task("tiny", "test", "tests", S, ("acc",))
    analyze("tiny", "tiny", "cloze", d / "analysis", lm=lm, task_obj=task, n_boot=50, progress=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(R, "_task", lambda *a, **k: task)   # the analyses load tasks by name; hand them the tiny one
    R.run_cka(d / "cka", task="tiny", remove=[1, 2], lm=lm)
    R.run_noise(d / "noise", task="tiny", alphas=(0.0, 5.0), depths=[0, 2, 4], seeds=(0, 1), lm=lm)
    R.run_ablation(d / "ablation", tasks=["tiny"], tp=2, window=(-1, 0), lm=lm)
    R.run_controls(d / "controls", task="tiny", counts=[1, 2], seeds=(0, 1), lm=lm)
    R.run_recovery(d / "recovery", removals=[[1], [1, 2]], mode="full", steps=3, lr=1e-3, batch_size=4, lm=lm,
                   log=None)                                 # full FT: the report test must not need peft
    for k, accs in enumerate(([0.4, 0.3, 0.1], [0.5, 0.2, 0.1], [0.6, 0.5, 0.3])):
        write_json(d / f"traj{k}" / "trajectory.json", {
            "model": "tiny", "task": f"t{k}", "method": "ip", "num_layers": 4, "chance": 0.25,
            "dense": {"acc": 0.6, "transition_point": 1 + k, "num_layers": 4},
            "steps": [{"removed": list(range(i + 1)), "ratio": (i + 1) / 4, "acc": a, "dm_final": 0.1,
                       "transition_point": 2} for i, a in enumerate(accs)]})
    mp.undo()                                      # later test modules load real tasks through R._task
    return d


def test_report_sections_images_no_links(runs, tmp_path):
    out = build_report([runs], tmp_path / "report.html")
    html = out.read_text()
    for sec in ("summary", "dm", "of", "trajectories", "removed", "cka", "noise", "ablation", "correlation",
                "recovery", "findings"):
        m = re.search(f'<section id="{sec}">(.*?)</section>', html, re.S)
        assert m, sec
        assert "no data for this section" not in m.group(1), sec
    srcs = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(srcs) >= 12 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert html.count("<img") == len(srcs)
    assert not re.search(r"https?://", html) and "href=" not in html and "<script" not in html
    assert "r = " in html                          # correlation computed on the fly from the trajectories
    summ = re.search('<section id="summary">(.*?)</section>', html, re.S).group(1)
    assert "TP 95% CI" in summ and "decision depth (gold)" in summ and "acc change-point" in summ
    assert 'alt="decision_depth.png"' in html
    abl = re.search('<section id="ablation">(.*?)</section>', html, re.S).group(1)
    assert "tiny Δ acc" in abl and len(re.findall(r"<td>[+-]\d\.\d{3} \[", abl)) == 3   # paired change, with CI


def test_tp_identified_follows_its_ci():
    from prunelens.report.findings import transition_identified
    a = {"model": "m", "task": "t", "n_samples": 100, "num_layers": 18, "transition_point": 12, "tp_ci": [10, 14],
         "tp_none_frac": 0.0}
    assert transition_identified({"analysis": [a]}).status == HOLDS
    a.update(tp_ci=[10, None], tp_none_frac=0.2)
    f = transition_identified({"analysis": [a]})
    assert f.status == FAILS and "95% CI [10, none]" in f.evidence and "20%" in f.evidence
    assert transition_identified({"analysis": [dict(a, transition_point=None)]}).status == NODATA


def test_empty_sections_say_so(tmp_path):
    write_json(tmp_path / "only" / "correlation.json", {"points": [], "r": None, "p": None, "n": 0, "gamma": 0.5,
                                                         "dropped": []})
    html = build_report([tmp_path / "only"], tmp_path / "r.html").read_text()
    assert html.count("no data for this section") == 9          # all but correlation and findings
    from prunelens.report.findings import CHECKS
    assert html.count(">not enough data<") == len(CHECKS)         # every claim, honestly


def test_findings_follow_the_numbers(runs):
    """On the tiny runs every verdict is one of the four and quotes its interval; the three outcomes of every check
    on hand-made inputs are in test_findings.py."""
    Rs = collect([runs])
    fs = findings(Rs)
    assert all(f.status in (HOLDS, FAILS, UNRESOLVED, NODATA) for f in fs)
    assert any(f.status == NODATA and "fewer than 5" in f.evidence for f in fs)     # n = 3 pairs
    by = {f.claim.split(" ")[0]: f for f in fs}
    assert "decision depth (gold)" in by["Where"].evidence                          # the estimators of analyze
    assert "difference" in by["Removing"].evidence and "[" in by["Removing"].evidence   # Table 1 on paired CIs


def test_controls_from_prune_trajectories():
    """IP vs random (seeds pooled) and IP vs one-shot ShortGPT come from `prunelens prune` trajectories of the same
    model/task/samples/score; the verdict follows the intervals and the evidence counts the comparisons."""
    from prunelens.report.findings import beats_random, ip_vs_oneshot, transition_exists

    def traj(method, accs, seed=None, h=0.02):
        p = {"method": method, "format": "cloze", "score": "norm", "margin": "logit", "skip": method == "iterative"}
        if seed is not None:
            p["seed_prune"] = seed
        return {"model": "m", "task": "t", "n_samples": 64, "num_layers": 4, "params": p,
                "dense": {"acc": 0.6, "transition_point": 3, "tp_ci": [2, 3], "removed": []},
                "steps": [{"removed": list(range(i + 1)), "ratio": (i + 1) / 4, "acc": a, "acc_ci": [a - h, a + h]}
                          for i, a in enumerate(accs)]}

    R = {"controls": [], "analysis": [], "trajectory": [
        traj("iterative", [0.6, 0.5]), traj("shortgpt", [0.45, 0.5]),
        traj("random", [0.5, 0.3], 0), traj("random", [0.4, 0.5], 1)]}
    f = beats_random(R)                        # two seeds this far apart cannot pin random's expectation down
    assert f.status == UNRESOLVED and f.evidence.startswith("0 of 2 comparisons hold, 0 do not, 2 not resolved")
    assert "random 0.450 (seeds 0.400-0.500)" in f.evidence
    R["trajectory"] += [traj("random", [0.45, 0.4], s) for s in (2, 3, 4)]
    R["trajectory"][2:4] = [traj("random", [0.45, 0.41], s) for s in (0, 1)]
    assert beats_random(R).status == HOLDS
    f = ip_vs_oneshot(R)                       # 1 removed: +0.15 holds; 2 removed: 0.0 +- 0.028 not resolved
    assert f.status == UNRESOLVED and f.evidence.startswith("1 of 2 comparisons hold")
    R["trajectory"][1]["steps"][1].update(acc=0.6, acc_ci=[0.58, 0.62])
    assert ip_vs_oneshot(R).status == FAILS
    assert "TP=3 (0.75 of depth), 95% CI [2, 3]" in transition_exists(R).evidence
    assert transition_exists(R).status == HOLDS
