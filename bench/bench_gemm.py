"""The matmul limit of the exact lens (issue 14), in one process, interleaved rounds (this VM drifts by up to 45%
between minutes, so only ratios within a round mean anything):

    python bench/bench_gemm.py --data-dir ../shared/data [--rounds 5] [--rows 1024]

Per round: a square fp32 matmul (2048^3, torch.mm = MKL), the lens's GEMM alone at the engine's tile shape
([vt, d] x [d, r] over the whole vocabulary, MKL), the whole tiled lens (`token_logprobs`: GEMM + online log-sum-exp +
target pick + greedy check), and two other GEMMs that could carry the lens: oneDNN fp32 and bf16 (AVX512-BF16).
Then the accuracy of each GEMM's log-sum-exp against a float64 reference on the same real residual rows: a GEMM
other than the engine's changes every per-depth score by its own rounding, which is what decides whether it can
replace MKL under the "equal within 1e-4" rule.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench_analyze import real_rows
from prunelens.engine.lens import TILE_VOCAB, Lens
from prunelens.model import load_model
from prunelens.tasks import load_task


def gflops(fn, flop: float) -> float:
    t = time.perf_counter()
    fn()
    return flop / (time.perf_counter() - t) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1024)
    a = ap.parse_args()
    lm = load_model(a.model, device="cpu", dtype="float32")
    U = lm.anatomy.unembed.weight.detach().float()
    V, d = U.shape
    lens = Lens(lm.anatomy, tiled=True)
    S = load_task("hellaswag", split="validation", data_dir=a.data_dir, limit=64).samples
    h = real_rows(lm, S, a.rows)
    x = lens.normed(h)                                                   # [r, d] real normed residuals
    r = len(x)
    xt = x.T.contiguous()
    xb, Ub = x.bfloat16(), U.bfloat16()
    t = torch.randint(0, V, (r, 1), generator=torch.Generator().manual_seed(0))
    A, B = torch.randn(2048, 2048), torch.randn(2048, 2048)
    vt = TILE_VOCAB
    buf = torch.empty(vt, r)
    flop = 2.0 * r * d * V

    def mkl():
        for v0 in range(0, V, vt):
            torch.mm(U[v0:v0 + vt], xt, out=buf)

    def onednn():
        for v0 in range(0, V, vt):
            torch.ops.mkldnn._linear_pointwise(U[v0:v0 + vt], x, None, "none", [], "")

    def bf16():
        for v0 in range(0, V, vt):
            torch.mm(Ub[v0:v0 + vt], xb.T)

    runs = {"square 2048^3 (MKL)": (lambda: torch.mm(A, B), 2.0 * 2048 ** 3),
            "lens GEMM alone, MKL fp32": (mkl, flop),
            "whole tiled lens (token_logprobs)": (lambda: lens.token_logprobs(h, t), flop),
            "lens GEMM, oneDNN fp32": (onednn, flop),
            "lens GEMM, bf16": (bf16, flop)}
    for fn, _ in runs.values():
        fn()                                                             # warm-up
    res = {k: [] for k in runs}
    for i in range(a.rounds):
        for k, (fn, fl) in runs.items():
            res[k].append(gflops(fn, fl))
        print(f"round {i}: " + " | ".join(f"{k} {v[-1]:.0f}" for k, v in res.items()), flush=True)
    sq = res["square 2048^3 (MKL)"]
    print(f"\n{a.model}, {r} real rows (HellaSwag texts, every depth), d={d}, V={V}, tile {vt}, "
          f"threads {torch.get_num_threads()}, {a.rounds} interleaved rounds")
    print("| measurement | median GFLOP/s | median share of the square matmul (per round) |\n|---|---:|---:|")
    for k, v in res.items():
        share = statistics.median(g / s for g, s in zip(v, sq))
        print(f"| {k} | {statistics.median(v):.0f} | {share:.0%} |")

    # Accuracy against float64 on the same rows (the first 256, to keep the float64 logits in memory).
    n = min(256, r)
    ref = x[:n].double() @ U.double().T
    lse_ref = torch.logsumexp(ref, -1)
    outs = {"MKL fp32": x[:n] @ U.T,
            "oneDNN fp32": torch.ops.mkldnn._linear_pointwise(x[:n], U, None, "none", [], ""),
            "bf16": (xb[:n] @ Ub.T).float()}
    print(f"\naccuracy on {n} rows (largest |logit| {ref.abs().max().item():.0f}):\n"
          "| GEMM | max abs logit error | max abs log-sum-exp error |\n|---|---:|---:|")
    for k, z in outs.items():
        print(f"| {k} | {(z.double() - ref).abs().max().item():.1e} | "
              f"{(torch.logsumexp(z.double(), -1) - lse_ref).abs().max().item():.1e} |")
    lse = {k: torch.logsumexp(outs[k].double(), -1) for k in ("MKL fp32", "oneDNN fp32")}
    print(f"| MKL fp32 vs oneDNN fp32, log-sum-exp | | {(lse['MKL fp32'] - lse['oneDNN fp32']).abs().max().item():.1e} |")


if __name__ == "__main__":
    main()
