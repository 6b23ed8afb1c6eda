"""The logit lens with the model's own final norm: z_l = softcap(scale * U · N(h_l)), always in float32.

Two projections, because the full vocabulary is the cost: `letter_logits` reads only the option-letter rows of U;
`token_logprobs` computes an exact full-vocabulary log-softmax, but only for the rows it is given, all stacked into
one matmul per chunk so that U is streamed once per chunk rather than once per layer and option.
"""
from __future__ import annotations

import copy

import torch

from ..model.anatomy import Anatomy


class Lens:
    def __init__(self, anatomy: Anatomy, chunk_bytes: int = 512 << 20):
        self.a = anatomy
        w = anatomy.unembed.weight
        self.device = w.device
        # U is read in its stored dtype and upcast per chunk: a full fp32 copy of a bf16 unembedding would double
        # the memory of the largest matrix in small models.
        self.weight = w.detach()
        b = getattr(anatomy.unembed, "bias", None)
        self.bias = None if b is None else b.detach().float()
        # A float32 copy of the (small) norm module so the normalisation itself runs in fp32 for bf16 models.
        self.norm = copy.deepcopy(anatomy.final_norm).float().eval()
        for p in self.norm.parameters():
            p.requires_grad_(False)
        # 512 MB of fp32 logits = 512 rows of a 262k vocabulary: below ~500 rows the CPU matmul loses 15-25% of
        # its throughput (measured), so callers stack rows up to this size before projecting.
        self.chunk_rows = max(1, chunk_bytes // (4 * w.shape[0]))

    @property
    def vocab_size(self) -> int:
        return self.weight.shape[0]

    def normed(self, h: torch.Tensor) -> torch.Tensor:
        """[R, d] raw residual -> [R, d] fp32 after the final norm."""
        return self.norm(h.to(self.device, torch.float32))

    def _finish(self, z: torch.Tensor) -> torch.Tensor:
        if self.a.logit_scale != 1.0:
            z = z * self.a.logit_scale
        if self.a.softcap:
            z = self.a.softcap * torch.tanh(z / self.a.softcap)
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
        R = h.shape[0]
        targets = targets.to(self.device)
        out = torch.zeros(targets.shape, dtype=torch.float32, device=self.device)
        greedy = torch.zeros(targets.shape, dtype=torch.bool, device=self.device)
        step = -(-R // -(-R // self.chunk_rows)) if R else 1       # equal chunks: no small remainder matmul
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
