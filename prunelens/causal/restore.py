"""Restore-patching: put the dense model's residual back into a pruned model at one depth and measure how much of
the decision returns (issue 12: the referee's objection (b), and the magnitude-mismatch explanation of LinearPatch,
arXiv 2505.24680).

Matching depths. Pruned depth j (the input of the pruned network's j-th layer, original id keep[j]) is matched to
dense depth keep[j]: the state the dense model hands that same layer. At j = L' (the pruned network's output) the
match is the dense output, depth L. So restoring every position at pruned depth j is exactly running dense layers
0..keep[j]-1 and then the pruned network from layer j on (the test checks this against a plain HF forward of that
model), and the curve runs from the pruned model (j = 0 when layer 0 is kept) to the dense model (j = L').

Modes (what is written at pruned depth j):
  restore_all       the dense residual at every position
  restore_decision  the dense residual at the decision position only: the context's last token, whose state
                    reads the first answer token (cloze) or the letter (letter format); every other position stays
                    pruned
  other_decision    control: another question's dense residual at the decision position (must restore ~nothing)
  mean_decision     control: the dataset-mean dense residual at the decision position
  norm_all          magnitude only: the pruned residual rescaled to the dense norm, per position, every position
  norm_decision     magnitude only, at the decision position

Each cell is the final depth's accuracy and Decision Margin per question, compared with the pruned model on the
same questions (paired bootstrap CI), and as the recovered share of the dense-pruned gap, (patched - pruned) /
(dense - pruned), its CI from the same question resamples (a ratio of resampled means).
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analyses.ablation import final_outcome as _outcome
from ..engine.autobatch import is_auto
from ..engine.prefix import DensePrefix
from ..engine.score import Resume, score
from ..journal import NoJournal
from ..metrics.verdict import HOLDS, NODATA, UNRESOLVED, decide
from ..model.surgery import keep_from_remove, pruned_view
from .patch import patch_residual, record_residuals

MODES = {
    "restore_all": "dense residual at every position",
    "restore_decision": "dense residual at the decision position (the context's last token) only",
    "other_decision": "control: another question's dense residual at the decision position",
    "mean_decision": "control: the dataset-mean dense residual at the decision position",
    "norm_all": "magnitude only: pruned residual rescaled to the dense norm at every position",
    "norm_decision": "magnitude only: pruned residual rescaled to the dense norm at the decision position",
}
SAME_BELOW_CUT = ("restore_all", "restore_decision", "norm_all", "norm_decision")
RECOVER_SHARE = 0.5   # "brings the decision back": at least half of the lost DM returns
QUESTIONS = {"silent": "restoring the Silent-Phase states brings the decision back",
             "magnitude": "magnitude alone (dense norms) explains the loss"}
CONTROLS = {"control": "another question's state restores nothing (control)",
            "mean_control": "the dataset-mean state restores nothing (control)"}
PHASE_QUESTION = "removing the Silent layers of the set costs more accuracy than removing its Decisive layers"


def matching_depths(keep: list[int], num_layers: int) -> list[int]:
    """Dense depth matched to each pruned depth j = 0..L' (see the module docstring)."""
    return [int(k) for k in keep] + [int(num_layers)]


def cut_depths(keep: list[int]) -> list[int]:
    """A reduced depth grid for costly tasks (`--depths cuts`): 0, the first pruned depth after every cut (where
    restore_all changes model, and where `silent_restore_depth` always lies) and the output L'. Every depth costs
    about L'/2 full passes per mode; this grid, about one per cut (less: a pass patched at j starts there), plus a
    full pass at L' for the decision and magnitude modes and at 0 for the controls."""
    Lp = len(keep)
    return sorted({0, Lp} | {j for j in range(1, Lp) if keep[j] != keep[j - 1] + 1})


def _rescale(h: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """h with each position's norm set to ref's (float32 ratios: a bf16 norm would move the result)."""
    r = ref.float().norm(dim=-1, keepdim=True) / h.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (h.float() * r).to(h.dtype)


def _patcher(mode: str, stored: list[torch.Tensor], other: dict, mean: torch.Tensor):
    """fn(k, cached, h) for patch_residual. Continuation forwards (cached) hold no decision position: in the
    decision modes they run unpatched on the cache the patched context left."""
    def fn(k, cached, h):
        D = stored[k]
        if D.shape != h.shape:
            raise RuntimeError(f"forward {k}: dense residual {tuple(D.shape)} vs pruned {tuple(h.shape)}: the two "
                               f"runs were batched differently")
        D = D.to(h.device)
        if mode == "restore_all":
            return D.to(h.dtype)
        if mode == "norm_all":
            return _rescale(h, D)
        if cached:
            return h
        h = h.clone()
        if mode == "restore_decision":
            h[:, -1] = D[:, -1]
        elif mode == "other_decision":
            h[:, -1] = other[k].to(h.device)
        elif mode == "mean_decision":
            h[:, -1] = mean.to(h.device)
        elif mode == "norm_decision":
            h[:, -1:] = _rescale(h[:, -1:], D[:, -1:])
        else:
            raise ValueError(f"unknown mode {mode!r}")
        return h
    return fn


def _decision_rows(stored: list[torch.Tensor], kinds: list[bool]):
    """Dense decision-position residuals of every context forward: {k: [B, d]} for another row (rows, in forward
    order, shifted by half their number: never the row itself; for partial-scoring tasks, whose questions have one
    row per context, the shifted row can rarely be another context of the same question) and their mean [d]."""
    ks = [k for k, cached in enumerate(kinds) if not cached]
    rows = torch.cat([stored[k][:, -1].float() for k in ks])          # [R, d]
    R = len(rows)
    shifted = rows.roll(-(R // 2), 0) if R > 1 else rows
    other, r0 = {}, 0
    for k in ks:
        b = stored[k].shape[0]
        other[k] = shifted[r0:r0 + b]
        r0 += b
    return other, rows.mean(0)


def _cell(base: np.ndarray, new: np.ndarray, dense: np.ndarray, idx: np.ndarray) -> dict:
    """Paired change against the pruned model and the recovered share of the gap, CIs from the resamples idx."""
    def boot(v):
        return v[idx].mean(1)                                          # [B, 2]
    d, gap = new - base, dense - base
    bd, bg = boot(d), boot(gap)
    with np.errstate(divide="ignore", invalid="ignore"):
        share, bshare = d.mean(0) / gap.mean(0), bd / bg
    lo, hi = np.percentile(bd, [2.5, 97.5], axis=0)
    # nearest rank: a resample whose gap is 0 gives an infinite share, which must stay an (unbounded) extreme
    with warnings.catch_warnings():        # a column all NaN (no gap in any resample) has no share: None below
        warnings.simplefilter("ignore", RuntimeWarning)
        slo, shi = np.nanpercentile(bshare, [2.5, 97.5], axis=0, method="inverted_cdf")
    f = lambda x: None if not np.isfinite(x) else float(x)            # noqa: E731
    return {"acc": float(new[:, 0].mean()), "dm": float(new[:, 1].mean()),
            "d_acc": float(d[:, 0].mean()), "d_acc_ci": [float(lo[0]), float(hi[0])],
            "d_dm": float(d[:, 1].mean()), "d_dm_ci": [float(lo[1]), float(hi[1])],
            "share_acc": f(share[0]), "share_acc_ci": [f(slo[0]), f(shi[0])],
            "share_dm": f(share[1]), "share_dm_ci": [f(slo[1]), f(shi[1])]}


@torch.no_grad()
def restore_curve(lm, samples, fmt: str = "cloze", remove=(), *, depths=None, modes=tuple(MODES), tp: int | None = None,
                  score_kind: str = "raw", margin: str = "logit", n_boot: int = 1000, seed: int = 0,
                  batch_size: int = 16, progress: bool = True, store_device="cpu", journal=None,
                  dense_prefix: bool = True, phases: bool = True) -> dict:
    """Restore-patching curve of the model without layers `remove`: for every pruned depth in `depths` (default
    all 0..L'; "cuts": `cut_depths`) and every mode, the final accuracy and DM per question against the pruned and dense models.

    tp: the dense model's transition depth (a Transition Point or a decision-depth median from `analyze`): labels each
    pruned depth Silent (its dense depth < tp) or Decisive, and picks the depth the questions are decided at (the
    last Silent depth). Memory: the dense residuals of every needed depth are kept, depths x tokens x d floats.
    journal (journal.py): patched passes a killed run finished are read from it (the dense and pruned passes rerun).
    dense_prefix (cloze): a pass patched at depth j starts there from the patched stored pruned residual (the same
    numbers as patching a whole pass; the pruned residuals of every patched depth are kept too, within the
    engine/prefix.py memory bound).
    phases: with tp, also run the phase split (four more passes); off for a run that adds one control to a finished
    study, whose phase split would repeat the first run's.
    """
    journal = journal or NoJournal()
    if is_auto(batch_size):
        raise ValueError("restore-patching needs a fixed --batch-size: the dense and pruned runs must batch "
                         "identically")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}: choose from {', '.join(MODES)}")
    t0 = time.time()
    L = lm.anatomy.num_layers
    keep = keep_from_remove(list(remove), L)
    Lp = len(keep)
    match = matching_depths(keep, L)
    pdepths = (list(range(Lp + 1)) if depths is None else cut_depths(keep) if isinstance(depths, str) and depths == "cuts"
               else sorted(set(int(d) for d in depths)))
    if any(not 0 <= j <= Lp for j in pdepths):
        raise ValueError(f"pruned depths must lie in 0..{Lp} (the pruned model has {Lp} layers), got {pdepths}")
    kw = dict(batch_size=batch_size, progress=False)

    # Dense pass: final-depth scores, and the full residual at every matched depth, per forward.
    with record_residuals(lm.anatomy, sorted({match[j] for j in pdepths}), device=store_device) as (store, calls):
        dense = _outcome(score(lm, samples, fmt, depths=[L], **kw), score_kind, margin)
    kinds = calls.kinds
    # The pruned pass keeps its own residual at every patched depth 1..L'-1 (cloze): a patched pass then starts at j
    # from fn(stored pruned residual) instead of running layers 0..j-1 again to reach the same state.
    pre = DensePrefix(fmt, enabled=dense_prefix, depths=[j for j in pdepths if 0 < j < Lp])
    order = {}

    def put(d, call, h):
        order.setdefault(call, len(order))                # forward index k of this call, in the engine's order
        pre.put(d, call, h)
    saver = Resume(save=pre.depths, put=put) if pre.on else None
    with pruned_view(lm, keep):
        pruned = _outcome(score(lm, samples, fmt, depths=[Lp], **kw, **({"resume": saver} if saver else {})),
                          score_kind, margin)
        idx = np.random.default_rng(seed).integers(0, len(samples), size=(n_boot, len(samples)))
        curves = {m: [] for m in modes}
        bar = tqdm(total=len(pdepths) * len(modes), desc="restore", disable=not progress)
        # Restoring every position at pruned depth j *is* the model "dense layers 0..keep[j]-1, then keep[j:]" (the
        # test checks it against a plain forward): depths inside one run of kept layers give the same model, where
        # nothing was removed below j it is the pruned model, and at the output the dense one. Each model runs once.
        same_model: dict = {tuple(keep): pruned, tuple(range(L)): dense}      # model (layer ids) -> outcome
        for j in pdepths:
            stored = store[match[j]]
            other, mean = _decision_rows(stored, kinds) if any(m.endswith("_decision") for m in modes) else ({}, None)
            for m in modes:
                model_key = tuple(range(match[j])) + tuple(keep[j:])
                if m == "restore_all" and model_key in same_model:
                    # no layer removed below j: the pruned model; none at or after keep[j]: the dense one
                    new = same_model[model_key]
                elif match[j] == j and m in SAME_BELOW_CUT:
                    # nothing removed below j: the dense residual there *is* the pruned one (same layers, same
                    # batches; a test checks it with patched passes), so these modes change nothing
                    new = pruned
                else:
                    def run(m=m, stored=stored, other=other, mean=mean):
                        fn = _patcher(m, stored, other, mean)
                        if pre.at(j) is not None:
                            r = Resume(start=j, fetch=lambda call: fn(order[call], call[1] > 0, pre.store[j, call]))
                            return _outcome(score(lm, samples, fmt, depths=[Lp], **kw, resume=r), score_kind, margin)
                        with patch_residual(lm.anatomy, j, fn):
                            return _outcome(score(lm, samples, fmt, depths=[Lp], **kw), score_kind, margin)
                    new = np.asarray(journal(("patch", j, m), run), dtype=float)
                    if m == "restore_all":
                        same_model[model_key] = new
                phase = None if tp is None else ("silent" if match[j] < tp else "decisive")
                curves[m].append({"pruned_depth": j, "dense_depth": match[j], "phase": phase,
                                  **_cell(pruned, new, dense, idx)})
                bar.update()
        bar.close()
    boot = lambda v: v[idx].mean(1)                                    # noqa: E731
    ci = lambda v: [float(x) for x in np.percentile(boot(v), [2.5, 97.5], axis=0)[:, 0]]  # noqa: E731
    res = {"removed": sorted(int(r) for r in remove), "kept": keep, "num_layers": L, "pruned_layers": Lp,
           "format": fmt, "score_kind": score_kind, "margin": margin, "n_boot": n_boot, "seed": seed,
           "n_samples": len(samples), "tp": tp, "depths": pdepths, "modes": {m: MODES[m] for m in modes},
           "dense": {"acc": float(dense[:, 0].mean()), "acc_ci": ci(dense[:, :1]),
                     "dm": float(dense[:, 1].mean()), "dm_ci": ci(dense[:, 1:])},
           "pruned": {"acc": float(pruned[:, 0].mean()), "acc_ci": ci(pruned[:, :1]),
                      "dm": float(pruned[:, 1].mean()), "dm_ci": ci(pruned[:, 1:])},
           "gap": _gap(dense, pruned, idx), "curves": curves}
    if tp is not None and phases:
        res["phase_split"] = phase_split(lm, samples, fmt, remove, tp, dense=dense, pruned=pruned, idx=idx,
                                         score_kind=score_kind, margin=margin, batch_size=batch_size)
    res["answers"] = answers(res)
    res["seconds"] = round(time.time() - t0, 1)
    return res


@torch.no_grad()
def phase_split(lm, samples, fmt, remove, tp: int, *, dense, pruned, idx, score_kind="raw", margin="logit",
                batch_size=16) -> dict:
    """The counterfactual that always separates the phases, whatever the removal set: the model without only the
    removed Silent layers (< tp) and without only the removed Decisive ones, each against dense (paired CI) and as
    its share of the dense-pruned DM gap, and the two against each other on the same questions and resamples
    (`silent_vs_decisive`: without-Decisive-only minus without-Silent-only, i.e. how much more removing the Silent
    layers costs). Two final-depth passes; no comparison when the removal set lies in one phase."""
    L = lm.anatomy.num_layers
    sil, dec = sorted(r for r in remove if r < tp), sorted(r for r in remove if r >= tp)
    if not sil or not dec:
        return {"silent_removed": sil, "decisive_removed": dec}
    out = {"silent_removed": sil, "decisive_removed": dec}
    gap = (dense - pruned)[idx].mean(1)                                   # [B, 2]
    outcomes = {}
    for name, rem in (("without_silent_only", sil), ("without_decisive_only", dec)):
        with pruned_view(lm, keep_from_remove(rem, L)):
            got = _outcome(score(lm, samples, fmt, depths=[L - len(rem)], batch_size=batch_size, progress=False),
                           score_kind, margin)
        outcomes[name] = got
        loss = (dense - got)[idx].mean(1)                                 # [B, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = loss[:, 1] / gap[:, 1]
        d = got - dense
        lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5], axis=0)
        slo, shi = np.nanpercentile(share, [2.5, 97.5], method="inverted_cdf") if np.isfinite(share).any() else (None,) * 2
        sh = float((dense - got)[:, 1].mean() / (dense - pruned)[:, 1].mean()) if (dense - pruned)[:, 1].mean() else None
        out[name] = {"removed": rem, "acc": float(got[:, 0].mean()), "dm": float(got[:, 1].mean()),
                     "d_acc": float(d[:, 0].mean()), "d_acc_ci": [float(lo[0]), float(hi[0])],
                     "d_dm": float(d[:, 1].mean()), "d_dm_ci": [float(lo[1]), float(hi[1])],
                     "share_of_dm_loss": sh, "share_of_dm_loss_ci": [None if slo is None or not np.isfinite(slo)
                                                                     else float(slo),
                                                                     None if shi is None or not np.isfinite(shi)
                                                                     else float(shi)]}
    d = outcomes["without_decisive_only"] - outcomes["without_silent_only"]              # [N, 2] per question
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5], axis=0)
    out["silent_vs_decisive"] = {"d_acc": float(d[:, 0].mean()), "d_acc_ci": [float(lo[0]), float(hi[0])],
                                 "d_dm": float(d[:, 1].mean()), "d_dm_ci": [float(lo[1]), float(hi[1])]}
    return out


def _gap(dense, pruned, idx) -> dict:
    d = dense - pruned
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5], axis=0)
    return {"acc": float(d[:, 0].mean()), "acc_ci": [float(lo[0]), float(hi[0])],
            "dm": float(d[:, 1].mean()), "dm_ci": [float(lo[1]), float(hi[1])]}


def _at(curve: list[dict], j: int) -> dict | None:
    return next((c for c in curve if c["pruned_depth"] == j), None)


def silent_restore_depth(keep: list[int], removed: list[int], tp: int) -> tuple[int | None, str]:
    """The pruned depth at which every removed Silent layer (a layer i < tp: its input is a Silent state) is given
    back and no removed Decisive layer is: the first kept layer after the last removed Silent layer. Restoring every
    position there runs the dense layers 0..keep[j]-1. (None, why) when no depth separates the two."""
    sil = [r for r in removed if r < tp]
    if not sil:
        return None, f"no removed layer lies in the Silent Phase (every removed layer >= tp={tp})"
    m = max(sil)
    j = next((j for j, k in enumerate(keep) if k > m), None)
    if j is None:
        return None, (f"no layer is kept after the last removed Silent layer ({m}): giving it back is the dense "
                      f"model itself")
    dec = [r for r in removed if tp <= r < keep[j]]
    if dec:
        return None, (f"the first depth after the last removed Silent layer ({m}) also gives back removed Decisive "
                      f"layers {dec}: no depth separates the phases for this removal set")
    return j, ""


def answers(res: dict) -> list[dict]:
    """The questions of issue 12, each decided by an interval at a depth fixed by the removal set and tp before
    looking at the curve: the pruned depth that gives back every removed Silent layer and no removed Decisive one
    (`silent_restore_depth`).

    1. Restoring the Silent-Phase states brings the decision back: restore_all's recovered share of the lost DM is
       >= 1/2 there, with the removed Decisive layers still missing.
    2. Magnitude alone explains the loss: norm_all's recovered share of the lost DM is >= 1/2 at the same depth.
    3. Controls: another question's state (other_decision) and the dataset-mean state (mean_decision) restore
       nothing: the paired DM change is <= 0 (holds when its CI lies at or below 0, does not hold when above 0).
    A DM gap whose CI contains 0 leaves nothing to recover: 1 and 2 are then "not resolved at this n"."""
    curves, tp, gap = res["curves"], res.get("tp"), res["gap"]
    if tp is None:
        return [{"question": q, "key": k, "status": NODATA, "evidence": "no transition depth given (tp)"}
                for k, q in {**QUESTIONS, "phase": PHASE_QUESTION}.items()]
    j, why = silent_restore_depth(res["kept"], res["removed"], tp)
    measured = {c["pruned_depth"] for c in next(iter(curves.values()), [])}
    if j is not None and j not in measured:
        j, why = None, f"pruned depth {j} (where the Silent layers are given back) was not patched"
    if j is None:     # the phase split needs no separating depth: it still answers
        return [{"question": q, "key": k, "status": NODATA, "evidence": why} for k, q in QUESTIONS.items()] + \
            [phase_answer(res)]
    out = []
    gap_status = decide(*gap["dm_ci"], ">", 0.0)
    only_silent = all(r < tp for r in res["removed"])
    for key, mode in (("silent", "restore_all"), ("magnitude", "norm_all")):
        q = QUESTIONS[key]
        c = _at(curves.get(mode, []), j)
        if key == "silent" and only_silent:
            # restoring there gives back every removed layer: the dense model by construction (share 1), which
            # compares the Silent Phase with nothing
            out.append({"question": q, "key": key, "mode": mode, "pruned_depth": j, "status": NODATA,
                        "evidence": f"every removed layer {res['removed']} lies before tp={tp} (Silent): restoring "
                                    f"at pruned depth {j} gives back all of them, i.e. the dense model by "
                                    f"construction; no removed Decisive layer is left to compare with"})
            continue
        if c is None:
            out.append({"question": q, "key": key, "status": NODATA,
                        "evidence": f"mode {mode} not run at depth {j}"})
            continue
        lo, hi = c["share_dm_ci"]
        status = decide(lo, hi, ">=", RECOVER_SHARE) if gap_status == HOLDS else UNRESOLVED
        out.append({"question": q, "key": key, "mode": mode, "pruned_depth": j, "dense_depth": c["dense_depth"],
                    "status": status, "share_dm": c["share_dm"], "share_dm_ci": c["share_dm_ci"],
                    "evidence": f"{mode} at pruned depth {j} (dense depth {c['dense_depth']}: every removed Silent "
                                f"layer given back, tp={tp}): recovered share of the lost DM {_fmt(c['share_dm'])} "
                                f"[{_fmt(lo)}, {_fmt(hi)}] (claim: >= {RECOVER_SHARE}); DM gap dense - pruned "
                                f"{gap['dm']:.3f} [{gap['dm_ci'][0]:.3f}, {gap['dm_ci'][1]:.3f}]"})
    for key, mode in (("control", "other_decision"), ("mean_control", "mean_decision")):
        c = _at(curves.get(mode, []), j)
        if c is None:
            continue
        lo, hi = c["d_dm_ci"]
        out.append({"question": CONTROLS[key], "key": key, "mode": mode, "pruned_depth": j,
                    "dense_depth": c["dense_depth"], "status": decide(lo, hi, "<=", 0.0), "d_dm": c["d_dm"],
                    "d_dm_ci": c["d_dm_ci"], "evidence": f"{mode} at pruned depth {j}: DM change against the pruned "
                                                         f"model {c['d_dm']:+.3f} [{lo:+.3f}, {hi:+.3f}] (claim: <= 0)"})
    out.append(phase_answer(res))
    return out


def phase_answer(res: dict) -> dict:
    """4. The phase split, decided by its paired interval: removing only the set's Silent layers costs more accuracy
    than removing only its Decisive layers (holds when the CI of the difference lies above 0, does not hold when
    below). This needs no depth that separates the phases, so it answers where question 1 cannot."""
    ps = res.get("phase_split") or {}
    c = ps.get("silent_vs_decisive")
    if not c:
        why = ("no transition depth given (tp)" if res.get("tp") is None else
               f"the removal set {res['removed']} lies in one phase (Silent {ps.get('silent_removed')}, Decisive "
               f"{ps.get('decisive_removed')})" if ps else "no phase split in this run")
        return {"question": PHASE_QUESTION, "key": "phase", "status": NODATA, "evidence": why}
    s, d = ps["without_silent_only"], ps["without_decisive_only"]
    lo, hi = c["d_acc_ci"]
    return {"question": PHASE_QUESTION, "key": "phase", "status": decide(lo, hi, ">", 0.0),
            "d_acc": c["d_acc"], "d_acc_ci": c["d_acc_ci"],
            "evidence": f"without only Silent {s['removed']}: accuracy {s['d_acc']:+.3f} [{s['d_acc_ci'][0]:+.3f}, "
                        f"{s['d_acc_ci'][1]:+.3f}]; without only Decisive {d['removed']}: {d['d_acc']:+.3f} "
                        f"[{d['d_acc_ci'][0]:+.3f}, {d['d_acc_ci'][1]:+.3f}]; paired difference (Decisive-only minus "
                        f"Silent-only) {c['d_acc']:+.3f} [{lo:+.3f}, {hi:+.3f}] (claim: > 0)"}


def _fmt(x) -> str:
    return "none" if x is None else f"{x + 0.0:.2f}"   # + 0.0: no "-0.00"
