"""The option trie: where a question's options part, and how an option-restricted readout scores them there.

Reading each option's first continuation token at the context's last position cannot tell apart options that begin
with the same token, and many do: with SmolLM2's tokenizer, 37% of ARC-Easy, 43% of OpenBookQA and 81% of PIQA
questions (n = 200; PIQA's two solutions mostly share their first words). Their scores tie, the tie goes to the
first option, and the readout sits near chance whatever the depth.

So the readout reads every branching node instead: the state that has seen the context and a prefix shared by
several options, where their next tokens differ. At each node the lens's logits of the distinct next tokens are
log-softmaxed among themselves; an option's score is the sum over the nodes on its path, the restricted analogue
of its log-likelihood. With distinct first tokens (and in the letter format) the trie is one node per question and
the score is the first-token readout minus a per-question constant, which no margin, prediction or softmax sees.
Options that are a strict prefix of another stop where they end (their score lacks that node's term; `prefix_options`
counts them); identical options tie, as they do in every readout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Trie:
    """Branching nodes of N questions' options (M nodes, up to C children each, K option slots)."""
    question: np.ndarray        # [M] the question of each node
    option: np.ndarray          # [M] an option through the node (its sequence holds the node's state)
    prefix: np.ndarray          # [M] tokens of the option read before the node (0: the context's last token)
    tok: np.ndarray             # [M, C] the children's next tokens, -1 = none
    path: np.ndarray            # [P, 4] (question, option, node, child): one row per node on each option's path
    n_options: np.ndarray       # [N]
    prefix_options: int         # options that end where others go on

    @property
    def K(self) -> int:
        return int(self.n_options.max())

    def _index(self, dev) -> tuple[torch.Tensor, ...]:
        """(no-child mask [M, C], flat option slot [P], node [P], child [P], valid slots [N, K]) on `dev`, built
        once per device: the tuned lens reads the trie at every training step, and they never change."""
        memo = self.__dict__.setdefault("_on_device", {})
        if dev not in memo:
            K, p = self.K, torch.as_tensor(self.path, device=dev)
            memo[dev] = (torch.as_tensor(self.tok, device=dev) < 0, p[:, 0] * K + p[:, 1], p[:, 2], p[:, 3],
                         torch.arange(K, device=dev)[None, :] < torch.as_tensor(self.n_options, device=dev)[:, None])
        return memo[dev]

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """z [M, C] lens logits of each node's children -> [N, K] option scores (sum of restricted log-probs on
        the option's path; -inf where a question has no such option). Differentiable in z. Computed on z's
        device (the lens's: CUDA models)."""
        no_child, slot, node, child, valid = self._index(z.device)
        logp = torch.log_softmax(z.masked_fill(no_child, -torch.inf), -1)
        N, K = len(self.n_options), self.K
        out = torch.zeros(N * K, dtype=logp.dtype, device=z.device).index_add(0, slot, logp[node, child])
        return out.view(N, K).masked_fill(~valid, -torch.inf)


def build(options: list[list[list[int]]]) -> Trie:
    """options[i][k]: the token ids of question i's option k (its continuation, or its letter as one token)."""
    question, option, prefix, children, path = [], [], [], [], []
    n_prefix = 0

    def grow(i: int, ks: list[int], j: int):
        nonlocal n_prefix
        seqs = options[i]
        while True:
            ended = [k for k in ks if len(seqs[k]) <= j]
            live = [k for k in ks if len(seqs[k]) > j]
            if len(live) < len(ks) and live:
                n_prefix += len(ended)               # a strict prefix of the others: its path stops here
            if len(live) <= 1:
                return
            groups: dict[int, list[int]] = {}
            for k in live:
                groups.setdefault(seqs[k][j], []).append(k)
            if len(groups) > 1:
                break
            ks, j = live, j + 1                      # every live option shares token j: no decision here
        m = len(question)
        question.append(i), option.append(live[0]), prefix.append(j), children.append(list(groups))
        for c, (_, members) in enumerate(groups.items()):
            path.extend((i, k, m, c) for k in members)
            grow(i, members, j + 1)

    for i, seqs in enumerate(options):
        grow(i, list(range(len(seqs))), 0)
    C = max((len(c) for c in children), default=1)
    tok = np.full((len(children), C), -1, dtype=np.int64)
    for m, c in enumerate(children):
        tok[m, :len(c)] = c
    return Trie(np.array(question, dtype=np.int64), np.array(option, dtype=np.int64),
                np.array(prefix, dtype=np.int64), tok, np.array(path, dtype=np.int64).reshape(-1, 4),
                np.array([len(s) for s in options], dtype=np.int64), n_prefix)


def stats(trie: Trie, options: list[list[list[int]]]) -> dict:
    """What the trie changed against the first-token readout, for the results file."""
    first_shared = [len({s[0] for s in q if s}) < len(q) for q in options]
    per_q = np.bincount(trie.question, minlength=len(options))
    return {"questions_sharing_a_first_token": float(np.mean(first_shared)),
            "branch_nodes_per_question": float(per_q.mean()),
            "questions_with_a_later_node": float(np.mean([(trie.prefix[trie.question == i] > 0).any()
                                                          for i in range(len(options))])),
            "prefix_options": trie.prefix_options}
