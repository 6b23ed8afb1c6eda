"""The logit lens with the model's own final norm: z_l = softcap(scale * U · N(h_l)), always in float32.

Two projections, because the full vocabulary is the cost: `letter_logits` reads only the option-letter rows of U;
`token_logprobs` computes an exact full-vocabulary log-softmax, but only for the rows it is given, all stacked into
one matmul per chunk so that U is streamed once per chunk rather than once per layer and option.
"""
from __future__ import annotations

import copy
import os
import torch

from ..model.anatomy import Anatomy


# Tile sizes measured on the 2-core AVX-512 CPU this project is built on (bench/RESULTS.md, issue 14): a [rows, vt]
# fp32 logits tile (8 MB) stays in the last-level cache while it is reduced. On CUDA the tile only bounds memory.
TILE_ROWS = 1024
TILE_VOCAB = 2048


class Lens:
    def __init__(self, anatomy: Anatomy, chunk_bytes: int = 512 << 20, tiled: bool | None = None,
                 tile_rows: int = TILE_ROWS, tile_vocab: int = TILE_VOCAB):
        self.a = anatomy
        w = anatomy.unembed.weight
        self.device = w.device
        # U is read in its stored dtype and upcast per tile: a full fp32 copy of a bf16 unembedding would double
        # the memory of the largest matrix in small models.
        self.weight = w.detach()
        b = getattr(anatomy.unembed, "bias", None)
        self.bias = None if b is None else b.detach().float()
        # A float32 copy of the (small) norm module so the normalisation itself runs in fp32 for bf16 models.
        self.norm = copy.deepcopy(anatomy.final_norm).float().eval()
        for p in self.norm.parameters():
            p.requires_grad_(False)
        # PRUNELENS_LENS=plain selects the untiled path (one [r, V] block per chunk), kept for benchmarks.
        self.tiled = os.environ.get("PRUNELENS_LENS", "tiled") != "plain" if tiled is None else tiled
        self.tile_rows, self.tile_vocab, self.plain_bytes = tile_rows, tile_vocab, chunk_bytes
        # Callers stack rows of several batches up to this many before projecting: below it the matmul loses
        # throughput (the plain path: 512 MB of fp32 logits = 512 rows of a 262k vocabulary).
        self.chunk_rows = tile_rows if self.tiled else max(1, chunk_bytes // (4 * w.shape[0]))

    @property
    def vocab_size(self) -> int:
        return self.weight.shape[0]

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        """[R, d] raw residual -> [R, d] fp32 after the final norm."""
        return self.norm(h.to(self.device, torch.float32))

    def _finish(self, z: torch.Tensor) -> torch.Tensor:
        """Logit scale and soft-cap, in place: every caller hands a fresh matmul output (or a reused tile buffer)."""
        if self.a.logit_scale != 1.0:
            z.mul_(self.a.logit_scale)
        if self.a.softcap:
            z.div_(self.a.softcap).tanh_().mul_(self.a.softcap)
        return z

    def _project(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weight if rows is None else self.weight[rows]
        z = x @ w.to(torch.float32).T
        if self.bias is not None:
            z = z + (self.bias if rows is None else self.bias[rows])
        return self._finish(z)

    @torch.no_grad()
    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """[R, d] -> [R, V] full logits (tests and small inputs only)."""
        return self._project(self.normed(h))

    @torch.no_grad()
    def letter_logits(self, h: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """[R, d], token_ids [K] -> [R, K] logits of just those vocabulary rows."""
        return self._project(self.normed(h), token_ids.to(self.device))

    @torch.no_grad()
    def token_logprobs(self, h: torch.Tensor, targets: torch.Tensor):
        """Exact log-softmax over the full vocabulary at each row, read at the given targets.

        h [R, d]; targets [R, J] token ids, -1 = unused. Returns (logprob [R, J] fp32, is_greedy [R, J] bool).
        J > 1 lets one row (a shared context's last token) serve the first token of every option.
        """
        if self.tiled:
            return self._token_logprobs_tiled(h, targets)
        return self._token_logprobs_plain(h, targets)

    def _token_logprobs_plain(self, h: torch.Tensor, targets: torch.Tensor):
        """The whole [r, V] logits block per chunk (the engine before tiling; kept as the benchmark reference)."""
        R = h.shape[0]
        targets = targets.to(self.device)
        out = torch.zeros(targets.shape, dtype=torch.float32, device=self.device)
        greedy = torch.zeros(targets.shape, dtype=torch.bool, device=self.device)
        rows = max(1, self.plain_bytes // (4 * self.vocab_size))
        step = -(-R // -(-R // rows)) if R else 1                   # equal chunks: no small remainder matmul
        for s in range(0, R, step):
            z = self._project(self.normed(h[s:s + step]))                      # [r, V]
            t = targets[s:s + step]
            tc = t.clamp_min(0)
            picked = z.gather(1, tc)
            # One pass gives the max and the argmax (first index on ties, as lm-eval's argmax); the exp-sum then
            # runs in place: three passes over [r, V] instead of logsumexp's and argmax's five.
            m, arg = z.max(-1, keepdim=True)
            lse = m + z.sub_(m).exp_().sum(-1, keepdim=True).log()
            out[s:s + len(z)] = torch.where(t >= 0, picked - lse, 0.0)
            greedy[s:s + len(z)] = (arg == tc) & (t >= 0)
        return out, greedy

    def _token_logprobs_tiled(self, h: torch.Tensor, targets: torch.Tensor):
        """The same numbers with the vocabulary in tiles. Each tile's logits are produced transposed, [n, r] = U_tile ·
        x^T (the layout the CPU GEMM runs fastest for this skinny shape), into one reused buffer that stays in cache
        while it is reduced; the tiles' results merge online (a running max and a float64 sum). Nothing of size [r, V] is
        ever written to memory, which held the plain path near half the machine's matmul throughput.

        The argmax is never materialised (an indexed max costs ~8x a plain max here). `greedy` only asks whether the
        target is the first index of the row maximum: its logit equals the final max, and no earlier index reaches
        it, i.e. neither the running max of earlier tiles nor a lower index of its own tile (checked on the few rows
        whose target lies in the tile)."""
        R, V = h.shape[0], self.vocab_size
        targets = targets.to(self.device)
        J = targets.shape[1]
        out = torch.zeros(targets.shape, dtype=torch.float32, device=self.device)
        greedy = torch.zeros(targets.shape, dtype=torch.bool, device=self.device)
        rows, vt = self.tile_rows, min(self.tile_vocab, V)
        step = -(-R // -(-R // rows)) if R else 1
        buf = torch.empty(min(step, R) * vt, dtype=torch.float32, device=self.device)
        for s in range(0, R, step):
            xt = self.normed(h[s:s + step]).T                                   # [d, r]
            r = xt.shape[1]
            t = targets[s:s + step].T                                           # [J, r]
            acc = torch.zeros(r, dtype=torch.float64, device=self.device)
            best = torch.full((r,), -torch.inf, device=self.device)
            picked = torch.zeros(t.shape, dtype=torch.float32, device=self.device)
            ahead = torch.zeros(t.shape, dtype=torch.bool, device=self.device)
            for v0 in range(0, V, vt):
                w = self.weight[v0:v0 + vt]
                n = len(w)
                z = buf[:n * r].view(n, r)
                torch.mm(w.to(torch.float32), xt, out=z)                         # [n, r], in cache
                if self.bias is not None:
                    z += self.bias[v0:v0 + n, None]
                z = self._finish(z)
                m = z.amax(0)                                                   # [r]
                for j in range(J):
                    tj = t[j]
                    ins = ((tj >= v0) & (tj < v0 + n)).nonzero().squeeze(1)     # rows whose target j is here
                    if not len(ins):
                        continue
                    loc = tj[ins] - v0
                    zc = z[:, ins]                                              # [n, k]
                    val = zc[loc, torch.arange(len(ins), device=self.device)]
                    picked[j, ins] = val
                    earlier = torch.arange(n, device=self.device)[:, None] < loc[None]
                    ahead[j, ins] = (best[ins] >= val) | ((zc >= val[None]) & earlier).any(0)
                # Online log-sum-exp as (running max, float64 sum scaled to it): summing in the log domain would round
                # lse (hundreds of nats at early depths) once per tile, ~1e-4 after 128 tiles.
                new = torch.maximum(best, m)
                # Clamped at -87 before exp: below it exp is denormal, which CPUs compute ~2x slower (early-depth logits
                # span hundreds of nats, so most of a tile is there), and exp(-87) = 1.6e-38 beside the max's 1 changes
                # no float32 sum.
                tile = z.sub_(m[None]).clamp_(min=-87.0).exp_().sum(0).double()  # [r]
                acc = acc * torch.exp((best - new).double()) + tile * torch.exp((m - new).double())
                best = new
            lse = (best.double() + acc.log()).float()
            valid = t >= 0
            out[s:s + r] = torch.where(valid, picked - lse[None], 0.0).T
            greedy[s:s + r] = (valid & (picked == best[None]) & ~ahead).T
        return out, greedy
