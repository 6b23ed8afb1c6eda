"""`prunelens export`: write a pruned model as a standard Hugging Face checkpoint."""
from __future__ import annotations


def cmd_export(a) -> int:
    from ..model import load_model
    from ..prune.export import export_pruned, step_of
    from ..model.surgery import keep_from_remove
    from .common import prepare_out
    if (a.remove is None) == (a.trajectory is None):
        raise ValueError("give exactly one of --remove and --trajectory")
    prepare_out(a, ("--model", a.model), ("--trajectory", a.trajectory))
    if a.trajectory is not None:
        if a.step is None:
            raise ValueError("--trajectory needs --step")
        remove, merges = step_of(a.trajectory, a.step)
    else:
        remove, merges = list(a.remove), {}
    from ..model.load import resolve_model_path
    from ..prune.run import _num_layers
    L = _num_layers(resolve_model_path(a.model))
    if L is not None:
        keep_from_remove(remove, L)                # bad ids fail before the weights are loaded
    from .common import say
    say(f"export: loading model {a.model} ...")
    lm = load_model(a.model, device=a.device, dtype=a.dtype, trust_remote_code=a.trust_remote_code)
    keep_from_remove(remove, lm.anatomy.num_layers)
    out = export_pruned(lm, remove, a.out, merges)
    print(f"exported {lm.anatomy.num_layers - len(remove)} of {lm.anatomy.num_layers} layers to {out}")
    return 0


def register(sub) -> None:
    from .common import DTYPE_CHOICES, _common_out, conventions, device_arg, layer_ids, nonneg_int
    p = sub.add_parser("export", help="save a pruned model as a standard checkpoint")
    p.add_argument("--model", default="gemma-3-270m",
                   help="hub id, local checkpoint folder, .gguf file, or a built-in alias: gemma-3-270m, smollm2-135m")
    p.add_argument("--remove", default=None, type=layer_ids,
                   help="comma-separated original layer ids to remove, e.g. 3,7,9")
    p.add_argument("--trajectory", default=None, help="trajectory.json (or its folder) to take a step from")
    p.add_argument("--step", type=nonneg_int, default=None, help="1-based step of --trajectory")
    _common_out(p, help="folder of the exported checkpoint")
    p.add_argument("--device", default="auto", type=device_arg, help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="weights' dtype")
    p.add_argument("--trust-remote-code", action="store_true", help="run model code from the checkpoint (off)")
    p.set_defaults(func=cmd_export)
    conventions(p)
