"""An option-restricted tuned lens (after Belrose et al., arXiv 2303.08112): per depth an affine translator of the
residual, identity at the start, fitted on a training split so that the lens's *option* distribution at that depth
matches the final depth's, then read on a disjoint evaluation split.

Restricted, and why: the tuned lens of the paper fits every depth's full-vocabulary distribution on millions of
tokens; on a CPU and a few hundred questions that is neither affordable nor identifiable. Here the loss is the KL
from the final depth's option distribution to the translated lens's distribution over the question's options only:
each option scored on the option trie (trie.py; letter format: the letter tokens at the decision position; cloze:
the options' distinct next tokens at every node where they part, summed along each option's path), and the
translator is identity + a rank-r update + a bias (r = 16 by default), with weight decay: with n in the
hundreds a full d x d map would memorise the training questions. The training and evaluation KL are both reported,
so overfitting is visible rather than assumed away.
"""
from __future__ import annotations

import numpy as np
import torch


def option_logits(lens, H: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
    """Lens logits of option tokens: H [N, d] raw residuals, tok [N, K] token ids (-1 = no option) -> [N, K] fp32,
    -inf where there is no option. Same norm, scale and soft-cap as the logit lens (not in place: autograd)."""
    x = lens.normed(H)                                                  # [N, d], on the lens's device
    tok = tok.to(x.device)
    U = lens.weight[tok.clamp_min(0)].float()                           # [N, K, d]
    z = torch.einsum("nkd,nd->nk", U, x)
    if lens.bias is not None:
        z = z + lens.bias[tok.clamp_min(0)]
    a = lens.a
    if a.logit_scale != 1.0:
        z = z * a.logit_scale
    if a.softcap:
        z = a.softcap * torch.tanh(z / a.softcap)
    return z.masked_fill(tok < 0, -torch.inf)


class Translator(torch.nn.Module):
    """h -> h + (h A) B + c; B = 0 and c = 0 at the start, so the untrained translator is the logit lens exactly."""

    def __init__(self, d: int, rank: int = 16, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = torch.nn.Parameter(torch.randn(d, rank, generator=g) / d ** 0.5)
        self.B = torch.nn.Parameter(torch.zeros(rank, d))
        self.c = torch.nn.Parameter(torch.zeros(d))

    def forward(self, h):
        return h + (h @ self.A) @ self.B + self.c


def _kl(p, z):
    """mean over questions of KL(p || softmax(z)) over valid options (p = 0 and z = -inf elsewhere)."""
    logq = torch.log_softmax(z, -1)
    t = torch.where(p > 0, p * (torch.log(p.clamp_min(1e-30)) - logq), torch.zeros_like(p))
    return t.sum(-1).mean()


def fit_tuned(lens, H_tr: np.ndarray, trie_tr, P_tr: np.ndarray, H_ev: np.ndarray, trie_ev, P_ev: np.ndarray, *,
              rank: int = 16, steps: int = 200, lr: float = 1e-2, weight_decay: float = 1e-2, seed: int = 0,
              progress=None) -> dict:
    """H_* [M, D, d] the states of each split's trie nodes (trie.Trie), P_* [N, K] final-depth option distributions.
    One translator per depth, shared by every node. Returns {"scores": [N_ev, D, K] translated option scores on the
    evaluation split (NaN: no option), "identity_scores": the same untranslated (the restricted logit lens),
    "kl_train"/"kl_eval"/"kl_eval_identity" [D]}."""
    D = H_tr.shape[1]
    dev = lens.device                   # fitted where the unembedding lives (CUDA models: on the GPU)
    tok_tr, tok_ev = torch.as_tensor(trie_tr.tok, device=dev), torch.as_tensor(trie_ev.tok, device=dev)
    read_tr = lambda h: trie_tr.scores(option_logits(lens, h, tok_tr))        # noqa: E731  [M, d] -> [N, K]
    read_ev = lambda h: trie_ev.scores(option_logits(lens, h, tok_ev))        # noqa: E731
    Ptr, Pev = (torch.as_tensor(P, dtype=torch.float32, device=dev) for P in (P_tr, P_ev))
    out = {k: [] for k in ("kl_train", "kl_eval", "kl_eval_identity")}
    scores, ident = [], []
    for d in range(D):
        htr = torch.as_tensor(H_tr[:, d], dtype=torch.float32, device=dev)
        hev = torch.as_tensor(H_ev[:, d], dtype=torch.float32, device=dev)
        T = Translator(htr.shape[-1], rank, seed + d).to(dev)     # initialised on the CPU: the same start anywhere
        opt = torch.optim.AdamW(T.parameters(), lr=lr, weight_decay=weight_decay)
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                loss = _kl(Ptr, read_tr(T(htr)))
                loss.backward()
                opt.step()
        with torch.no_grad():
            z_ev, z_id = read_ev(T(hev)), read_ev(hev)
            out["kl_train"].append(float(_kl(Ptr, read_tr(T(htr)))))
            out["kl_eval"].append(float(_kl(Pev, z_ev)))
            out["kl_eval_identity"].append(float(_kl(Pev, z_id)))
        scores.append(z_ev.masked_fill(torch.isinf(z_ev), torch.nan).cpu().numpy())
        ident.append(z_id.masked_fill(torch.isinf(z_id), torch.nan).cpu().numpy())
        if progress:
            progress(d)
    return {"scores": np.stack(scores, 1).astype(np.float64), "identity_scores": np.stack(ident, 1).astype(np.float64),
            **out}
