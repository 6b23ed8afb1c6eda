"""The referee's controls: random pruning at equal layer count (several seeds), one-shot ShortGPT (BI computed once on
the dense model), Gromov's angular-distance block (the n contiguous blocks whose input and output are closest in
angle, arXiv 2403.17887) and the tail rule (the last k blocks; "drop the last 25%" of arXiv 2411.15558 at k = L/4),
all at the IP trajectory's layer counts. Final depth only: a control's question is its accuracy, so each removal is
one pass with the lens at one depth instead of L+1. Every accuracy/DM carries a bootstrap CI."""
from __future__ import annotations

import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analyze import measure
from ..engine.autobatch import fixed, is_auto
from ..engine.capture import capture_residuals
from ..engine.prefix import DensePrefix
from ..engine.score import _batches, _left_pad
from ..journal import NoJournal, plain
from ..model.surgery import keep_from_remove, pruned_view
from . import trajectories as T
from .ablation import paired, per_sample
from ..prune.influence import angular_block
from .states import prompt_ids


@torch.no_grad()
def dense_geometry(lm, samples, fmt: str = "cloze", batch_size: int = 8) -> tuple[np.ndarray, torch.Tensor]:
    """One pass over the prompts: BI_l = 1 - mean over non-pad prompt tokens of cos(h_l, h_{l+1}) -> [L], and the
    last token's raw residual at every depth -> [N, L+1, d] (Gromov's angular distance). float32."""
    ids, _ = prompt_ids(lm, samples, fmt)
    lengths = [len(x) for x in ids]
    tot, cnt, last = None, 0, {}
    for batch in _batches(sorted(range(len(ids)), key=lambda i: -lengths[i]), lengths, fixed(batch_size, lm), 4096):
        x, mask, pos = _left_pad([ids[i] for i in batch], lm.tokenizer.pad_token_id or 0, lm.device)
        B, Tn = x.shape
        with capture_residuals(lm.anatomy, torch.arange(Tn, device=lm.device)[None].expand(B, Tn)) as cap:
            lm.anatomy.base(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=False)
        h = cap.stacked().float()                                            # [B, D, T, d]
        cos = torch.nn.functional.cosine_similarity(h[:, :-1], h[:, 1:], dim=-1)   # [B, L, T]
        m = mask.bool()[:, None, :]
        s = (cos * m).sum((0, 2))
        tot = s if tot is None else tot + s
        cnt += int(m.sum())
        # left padding: the last token is at -1; cloned, else each view would keep its batch's [B, D, T, d] alive
        last.update(zip(batch, h[:, :, -1].clone().cpu()))
    return (1 - tot / cnt).cpu().numpy(), torch.stack([last[i] for i in range(len(ids))])


def block_influence(lm, samples, fmt: str = "cloze", batch_size: int = 8) -> np.ndarray:
    """BI_l of the dense model on the prompts of `samples` -> [L] (see dense_geometry)."""
    return dense_geometry(lm, samples, fmt, batch_size)[0]


def evaluate(lm, samples, fmt, remove, *, n_boot=1000, seed=0, batch_size=16, score_kind="raw",
             margin="logit", prefix: DensePrefix | None = None, outcomes: bool = False) -> dict:
    """Final-depth accuracy and DM (with bootstrap CIs) of the model without layers `remove`. prefix: stored dense
    residuals (engine/prefix.py): the pass starts at the first removed layer from them (with `remove` empty, this
    pass stores them). outcomes: also each question's (correct, DM) [N, 2], for paired comparisons."""
    L = lm.anatomy.num_layers
    keep = keep_from_remove(remove, L)
    res = None if prefix is None else prefix.resume(remove, L) if remove else prefix.saver(L)
    with pruned_view(lm, keep):
        m = measure(lm, samples, fmt, depths=[len(keep)], n_boot=n_boot, seed=seed, batch_size=batch_size,
                    score_kind=score_kind, margin=margin, progress=False, resume=res)
    s = m.summary
    return {"removed": sorted(remove), "acc": s["acc"], "acc_ci": s["acc_ci"], "dm_final": s["dm_final"],
            "dm_final_ci": s["dm_final_ci"], **({"outcomes": per_sample(m, score_kind, margin)} if outcomes else {})}


def random_removal(num_layers: int, k: int, seed: int, region: list[int] | None = None) -> list[int]:
    pool = list(range(num_layers)) if region is None else list(region)
    if k > len(pool):
        raise ValueError(f"cannot remove {k} layers from a region of {len(pool)}")
    return sorted(np.random.default_rng(seed).choice(pool, size=k, replace=False).tolist())


def run_controls(lm, samples, fmt: str = "cloze", *, counts=None, ip_trajectory: dict | None = None,
                 seeds=(0, 1, 2), bi_samples=None, n_boot: int = 1000, batch_size: int = 16,
                 score_kind: str = "raw", margin: str = "logit", progress: bool = True, journal=None,
                 dense_prefix: bool = True) -> dict:
    """At each layer count k (from the IP trajectory, or `counts`): one-shot ShortGPT, Gromov's angular block, the
    tail and random pruning over seeds. progress: one bar over the passes (BI and angular states, dense, one
    ShortGPT, one angular and one tail per count, one random per count and seed).

    Returns {"counts", "num_layers", "bi", "methods": {name: {"steps": [{removed, ratio, acc, acc_ci, dm_final,..}]}}}
    where the random method's steps also carry per-seed values and their mean/std. With an IP trajectory its sets
    are measured here too, and every control step (each random seed's run) carries `vs_ip`: its change against IP at
    the same layer count on the same questions, d = control - IP with a paired bootstrap CI. journal (journal.py): finished
    passes are read from it and recorded in it (a killed run resumes; a set two methods share runs once).
    dense_prefix: cloze passes start from the dense residual at their first removed depth (engine/prefix.py)."""
    t0 = time.time()
    L = lm.anatomy.num_layers
    kw = dict(n_boot=n_boot, batch_size=batch_size, score_kind=score_kind, margin=margin)
    methods = {}
    if ip_trajectory is not None:
        ip = [s for s in T.steps(ip_trajectory) if s.get("removed")]
        counts = sorted({len(s["removed"]) for s in ip}) if counts is None else counts
        methods["ip"] = {"steps": [{"removed": s["removed"], "ratio": s["ratio"], "acc": T.final_acc(s),
                                    "acc_ci": s.get("acc_ci"), "dm_final": s.get("dm_final")} for s in ip]}
    if not counts:
        raise ValueError("give layer counts or an IP trajectory")
    ip_sets = [s["removed"] for s in methods["ip"]["steps"]] if "ip" in methods else []
    bar = tqdm(total=2 + len(counts) * (3 + len(seeds)) + len(ip_sets), desc="controls", disable=not progress)

    journal = journal or NoJournal()
    outs: dict[tuple, np.ndarray] = {}          # per-question (correct, DM) of every pass, for the paired changes

    def ev(remove):               # one pass (or its recorded result), and the bar advances
        key = sorted(int(i) for i in remove)
        x = dict(journal(key, lambda: evaluate(lm, samples, fmt, remove, outcomes=True, **kw)))
        outs[tuple(key)] = np.asarray(x.pop("outcomes"), dtype=float)
        bar.update()
        return x
    bi, last = dense_geometry(lm, bi_samples or samples, fmt)
    bar.update()
    order = np.argsort(bi, kind="stable").tolist()
    sets = {"shortgpt_oneshot": [order[:k] for k in counts], "angular_oneshot": [angular_block(last, k) for k in counts],
            "tail": [list(range(L - k, L)) for k in counts],
            "random": [[random_removal(L, k, s) for s in seeds] for k in counts]}
    # every set is known now: the dense pass keeps the residual at each set's first removed depth, and each pass
    # starts there (the same numbers as a whole pass, within float error; fewer layers run)
    if dense_prefix and not is_auto(batch_size):
        every = [*sets["shortgpt_oneshot"], *sets["angular_oneshot"], *sets["tail"], *sum(sets["random"], []),
                 *ip_sets]
        kw["prefix"] = DensePrefix(fmt, depths={DensePrefix.start(r, L) for r in every})
        dense = plain(evaluate(lm, samples, fmt, [], **kw))    # never from the journal: it fills the store
        bar.update()
    else:
        dense = ev([])
    for name in ("shortgpt_oneshot", "angular_oneshot", "tail"):
        methods[name] = {"steps": [{**ev(r), "ratio": k / L} for r, k in zip(sets[name], counts)]}
    rnd = []
    for k, per_seed in zip(counts, sets["random"]):
        runs = [ev(r) for r in per_seed]
        accs, dms = [r["acc"] for r in runs], [r["dm_final"] for r in runs]
        rnd.append({"ratio": k / L, "n_removed": k, "acc": float(np.mean(accs)),
                    "acc_std": float(np.std(accs, ddof=1)) if len(runs) > 1 else 0.0,
                    "dm_final": float(np.mean(dms)), "dm_std": float(np.std(dms, ddof=1)) if len(runs) > 1 else 0.0,
                    "seeds": list(seeds), "runs": runs})
    methods["random"] = {"steps": rnd}
    if ip_sets:
        # The IP sets measured here too, on the same questions and final depth: every control's change against IP
        # at its layer count is then paired (a far tighter interval than two unpaired accuracy CIs).
        ip_at = {}
        for st in methods["ip"]["steps"]:
            st["acc_here"] = ev(st["removed"])["acc"]        # = the trajectory's accuracy (same model, questions)
            ip_at[len(st["removed"])] = outs[tuple(sorted(st["removed"]))]
        for name in ("shortgpt_oneshot", "angular_oneshot", "tail"):
            for st in methods[name]["steps"]:
                if len(st["removed"]) in ip_at:
                    st["vs_ip"] = paired(ip_at[len(st["removed"])], outs[tuple(st["removed"])], n_boot, 0)
        for st in rnd:
            for r in st["runs"]:
                if st["n_removed"] in ip_at:
                    r["vs_ip"] = paired(ip_at[st["n_removed"]], outs[tuple(r["removed"])], n_boot, 0)
    bar.close()
    return {"counts": list(counts), "num_layers": L, "score_kind": score_kind, "margin": margin, "bi": bi,
            "shortgpt_order": order, "dense": dense, "methods": methods, "seconds": round(time.time() - t0, 1)}
