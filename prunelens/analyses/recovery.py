"""Recovery by fine-tuning (the paper's Figure 7): LoRA (peft) or full fine-tuning of a pruned copy of the model on
a training split, with DM and accuracy before and after, at several pruning ratios.

The objective is the one the lens scores: next-token cross-entropy on the gold option's continuation tokens given its
context (cloze), or on the gold letter token after the letter prompt (letter). The same code runs on CPU and GPU.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..analyze import measure
from ..engine.encode import default_add_bos, encode, encode_pair
from ..journal import NoJournal
from ..model import LoadedModel, find_anatomy
from ..model.surgery import apply_keep, keep_from_remove


def training_items(lm, samples, fmt: str) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per sample; labels are -100 except on the gold answer tokens."""
    add_bos = default_add_bos(lm.tokenizer, getattr(lm.model.config, "model_type", ""))
    out = []
    for s in samples:
        if fmt == "cloze":
            ctx, cont = encode_pair(lm.tokenizer, s.contexts[s.gold], s.continuations[s.gold], add_bos)
        else:
            ctx = encode(lm.tokenizer, s.letter_prompt, add_bos)
            cont = encode(lm.tokenizer, s.letter_prompt + s.letters[s.gold], add_bos)[len(ctx):]
        out.append((ctx + cont, [-100] * len(ctx) + cont))
    return out


def collate(items, pad_id: int, device) -> dict:
    """Right-padded batch: input_ids/attention_mask/labels [B, T] (HF shifts labels inside the loss)."""
    T = max(len(i) for i, _ in items)
    ids = torch.full((len(items), T), pad_id, dtype=torch.long)
    lab = torch.full((len(items), T), -100, dtype=torch.long)
    mask = torch.zeros((len(items), T), dtype=torch.long)
    for b, (x, y) in enumerate(items):
        ids[b, :len(x)], lab[b, :len(y)], mask[b, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": lab.to(device)}


@torch.no_grad()
def mean_loss(model, items, pad_id, device, batch_size: int = 8) -> float:
    """Token-weighted mean cross-entropy of the answer tokens."""
    model.eval()
    tot = n = 0.0
    for s in range(0, len(items), batch_size):
        b = collate(items[s:s + batch_size], pad_id, device)
        k = int((b["labels"][:, 1:] != -100).sum())
        tot += model(**b, use_cache=False).loss.item() * k
        n += k
    return tot / max(n, 1)


def lora_targets(anatomy) -> list[str]:
    """Leaf names of every Linear/Conv1D inside the decoder layers (q_proj, ..., down_proj, or c_attn, ...)."""
    names = set()
    for layer in anatomy.layers:
        for name, m in layer.named_modules():
            if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D":
                names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def finetune(lm: LoadedModel, items, *, mode: str = "lora", steps: int = 40, lr: float = 2e-4, batch_size: int = 8,
             lora_r: int = 8, lora_alpha: int = 16, seed: int = 0, log=None) -> list[float]:
    """Train `lm.model` in place (LoRA adapters are injected into it). Returns the training loss per step."""
    torch.manual_seed(seed)
    model = lm.model
    if mode == "lora":
        from peft import LoraConfig, get_peft_model
        cfg = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=lora_targets(lm.anatomy))
        model = get_peft_model(model, cfg)     # modifies the Linear modules in place; the anatomy stays valid
    elif mode != "full":
        raise ValueError(f"mode must be lora or full, got {mode!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    pad = lm.tokenizer.pad_token_id or 0
    losses = []
    model.train()
    for step in range(steps):
        batch = collate([items[i] for i in rng.choice(len(items), min(batch_size, len(items)), replace=False)],
                        pad, lm.device)
        loss = model(**batch, use_cache=False).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log and (step % 10 == 0 or step == steps - 1):
            log(f"[recover] step {step + 1}/{steps} loss {losses[-1]:.4f}")
    model.eval()
    return losses


def pruned_copy(lm: LoadedModel, remove) -> LoadedModel:
    """A deep copy of the model with `remove` pruned for good (training must never touch the dense weights)."""
    m = copy.deepcopy(lm.model)
    c = LoadedModel(m, lm.tokenizer, find_anatomy(m), lm.name, lm.path)
    apply_keep(c, keep_from_remove(remove, lm.anatomy.num_layers))
    return c


def _summ(m) -> dict:
    return {**{k: m.summary.get(k) for k in ("acc", "acc_ci", "dm_final", "dm_final_ci", "transition_point",
                                              "transition_relative", "estimators")},
            "dm_by_depth": [r["dm_mean"] for r in m.depths], "acc_by_depth": [r["acc"] for r in m.depths]}


def recover(lm, train_samples, eval_samples, fmt: str = "cloze", *, removals: list[list[int]], mode: str = "lora",
            steps: int = 40, lr: float = 2e-4, batch_size: int = 8, lora_r: int = 8, seed: int = 0,
            n_boot: int = 1000, eval_batch_size: int = 16, full_depth: bool = True, log=None,
            score_kind: str = "raw", margin: str = "logit", progress: bool = True, journal=None) -> dict:
    """For each removal set: measure -> fine-tune a pruned copy -> measure again. full_depth=False measures the
    final depth only (no TP; ~L times cheaper on a CPU). progress: one bar over the dense measurement and, per
    removal set, its before / train / after stages. journal (journal.py): removal sets a killed run finished are read
    from it (the dense measurement reruns)."""
    L = lm.anatomy.num_layers
    tr, ev = training_items(lm, train_samples, fmt), training_items(lm, eval_samples, fmt)
    pad = lm.tokenizer.pad_token_id or 0
    kw = dict(n_boot=n_boot, seed=seed, batch_size=eval_batch_size, progress=False, score_kind=score_kind,
              margin=margin)
    dd = (lambda m: {}) if full_depth else (lambda m: {"depths": [m.anatomy.num_layers]})
    bar = tqdm(total=1 + 3 * len(removals), desc="recover", disable=not progress)
    dense = _summ(measure(lm, eval_samples, fmt, **dd(lm), **kw))      # the ceiling recovery is judged against
    bar.update()
    def one(remove) -> dict:
        t0 = time.time()
        c = pruned_copy(lm, remove)
        before = measure(c, eval_samples, fmt, **dd(c), **kw)
        loss0 = {"train": mean_loss(c.model, tr, pad, c.device), "eval": mean_loss(c.model, ev, pad, c.device)}
        bar.update()
        hist = finetune(c, tr, mode=mode, steps=steps, lr=lr, batch_size=batch_size, lora_r=lora_r,
                        lora_alpha=2 * lora_r, seed=seed, log=log)
        bar.update()
        loss1 = {"train": mean_loss(c.model, tr, pad, c.device), "eval": mean_loss(c.model, ev, pad, c.device)}
        after = measure(c, eval_samples, fmt, **dd(c), **kw)
        bar.update()
        return {"removed": sorted(remove), "ratio": len(remove) / L, "remaining_layers": L - len(remove),
                "before": _summ(before), "after": _summ(after), "loss_before": loss0, "loss_after": loss1,
                "train_loss": hist, "seconds": round(time.time() - t0, 1)}

    journal = journal or NoJournal()
    runs = []
    for remove in removals:
        key = sorted(int(i) for i in remove)
        if key in journal:
            bar.update(3)
        runs.append(journal(key, lambda remove=remove: one(remove)))
    bar.close()
    return {"mode": mode, "steps": steps, "lr": lr, "batch_size": batch_size, "lora_r": lora_r, "seed": seed,
            "num_layers": L, "full_depth": full_depth, "score_kind": score_kind, "margin": margin, "dense": dense,
            "n_train": len(train_samples), "n_eval": len(eval_samples), "runs": runs}
