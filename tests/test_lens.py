"""The vocabulary-tiled exact lens (engine/lens.py) against the untiled path and against a float64 computation
with the model's own final norm and lm_head, on every tiny family (soft-capped and logit-scaled heads included)."""
import types

import pytest
import torch

from helpers import tiny_lm
from prunelens.engine.lens import Lens
from tiny import FAMILIES


def reference(lm, h, targets):
    """log_softmax in float64 of the model's own head on its own final norm; greedy = first argmax (lm-eval)."""
    a = lm.anatomy
    z = a.unembed(a.final_norm(h)).double()
    if a.logit_scale != 1.0:
        z = z * a.logit_scale
    if a.softcap:
        z = a.softcap * torch.tanh(z / a.softcap)
    lp = torch.log_softmax(z, -1)
    tc = targets.clamp_min(0)
    return torch.where(targets >= 0, lp.gather(1, tc), 0.0), (z.argmax(-1, keepdim=True) == tc) & (targets >= 0)


@pytest.mark.parametrize("family", FAMILIES)
@torch.no_grad()
def test_tiled_matches_plain_and_reference(family):
    lm = tiny_lm(family, num_layers=2)
    g = torch.Generator().manual_seed(0)
    d, V = lm.anatomy.unembed.weight.shape[1], lm.anatomy.unembed.weight.shape[0]
    R = 23
    h = torch.randn(R, d, generator=g) * 4
    targets = torch.randint(0, V, (R, 3), generator=g)
    targets[::3, 1:] = -1                                   # rows with unused targets
    targets[5, 0] = -1
    # every other row's own argmax is one of its targets, so `greedy` is exercised both ways
    z = lm.anatomy.unembed(lm.anatomy.final_norm(h))
    targets[1:R:2, 2] = z[1:R:2].argmax(-1)
    ref_lp, ref_gr = reference(lm, h, targets)
    plain = Lens(lm.anatomy, tiled=False).token_logprobs(h, targets)
    # tiles smaller than the vocabulary, with a remainder tile, and row chunks with a remainder
    for rows, vt in ((7, 100), (64, 448), (5, 1000), (1024, 4096)):
        lp, gr = Lens(lm.anatomy, tiled=True, tile_rows=rows, tile_vocab=vt).token_logprobs(h, targets)
        assert lp.dtype == torch.float32
        torch.testing.assert_close(lp.double(), ref_lp, atol=1e-4, rtol=0)
        torch.testing.assert_close(lp, plain[0], atol=1e-5, rtol=0)
        assert torch.equal(gr, ref_gr) and torch.equal(gr, plain[1])
    assert ref_gr.any() and not ref_gr.all()


def _exact_lens(W, softcap=None, scale=1.0):
    """A lens on an identity norm with integer weights: every logit is an exact integer in fp32, whatever the
    summation order, so ties are real ties in every tile layout."""
    un = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
    un.weight.data = W
    a = types.SimpleNamespace(unembed=un, final_norm=torch.nn.Identity(), softcap=softcap, logit_scale=scale)
    return a


@pytest.mark.parametrize("softcap,scale", [(None, 1.0), (30.0, 1.0), (None, 0.25)])
@torch.no_grad()
def test_argmax_ties_first_index_wins_across_tiles(softcap, scale):
    g = torch.Generator().manual_seed(1)
    V, d = 300, 8
    W = torch.randint(-2, 3, (V, d), generator=g).float()
    x = torch.randint(-2, 3, (4, d), generator=g).float()
    top = x.sign() * 3                                       # rows 17 and 250 (other tiles) give the same top logit
    for r, row in enumerate(top):
        W[17 + r] = row
        W[250 + r] = row
    targets = torch.tensor([[17, 250], [251, 18], [19, 252], [253, -1]])
    a = _exact_lens(W, softcap, scale)
    for tiled, vt in ((False, 0), (True, 64), (True, 16), (True, 300)):
        lens = Lens(a, tiled=tiled, tile_rows=3, tile_vocab=vt or 4096)
        lp, gr = lens.token_logprobs(x, targets)
        # the first of the tied rows is greedy, the later one is not; both get the same log-probability
        assert gr.tolist() == [[True, False], [False, True], [True, False], [False, False]], (tiled, vt)
        assert lp[0, 0] == lp[0, 1] and lp[1, 0] == lp[1, 1]


@torch.no_grad()
def test_bias_and_bf16_unembedding():
    """A biased head (e.g. phi) and a bf16 weight: upcast per tile, bias added per tile."""
    g = torch.Generator().manual_seed(2)
    un = torch.nn.Linear(16, 500, bias=True)
    un.bias.data.normal_(generator=g)
    un.to(torch.bfloat16)
    a = types.SimpleNamespace(unembed=un, final_norm=torch.nn.Identity(), softcap=None, logit_scale=1.0)
    h = torch.randn(9, 16, generator=g)
    t = torch.randint(0, 500, (9, 2), generator=g)
    z = h.double() @ un.weight.double().T + un.bias.double()
    ref = torch.log_softmax(z, -1).gather(1, t)
    lp, _ = Lens(a, tiled=True, tile_rows=4, tile_vocab=128).token_logprobs(h, t)
    torch.testing.assert_close(lp.double(), ref, atol=1e-4, rtol=0)
