"""`prunelens analyze`: the decision lens on one model and task."""
from __future__ import annotations

from .common import _common_measure, _common_model, _common_task, add_bos_arg, device_map_arg


def cmd_analyze(a) -> int:
    from ..analyze import analyze
    res = analyze(a.model, a.task, a.format, a.out, split=a.split, data_dir=a.data_dir, limit=a.limit,
                  sample=a.sample, seed=a.seed, device=a.device, dtype=a.dtype, score_kind=a.score, margin=a.margin,
                  tau=a.tau, batch_size=a.batch_size, n_boot=a.n_boot, trust_remote_code=a.trust_remote_code,
                  add_bos=add_bos_arg(a), device_map=device_map_arg(a), offload_folder=a.offload_folder)
    tp = res["transition_point"]
    print(f"{res['task']} ({res['format']}, n={res['n_samples']}): acc={res['acc']:.3f} "
          f"[{res['acc_ci'][0]:.3f}, {res['acc_ci'][1]:.3f}]"
          + (f", acc_norm={res['acc_norm']:.3f}" if "acc_norm" in res else "")
          + f", final DM={res['dm_final']:.3f}, Transition Point="
          + (f"{tp} of {res['num_layers']} ({res['transition_relative']:.2f})" if tp is not None else "none"))
    print(f"results: {a.out}/analysis.json, {a.out}/samples.csv; plots: "
          + ", ".join(f"{a.out}/{p}" for p in res.get("plots", [])))
    return 0


def register(sub) -> None:
    p = sub.add_parser("analyze", help="per-depth decision lens: DM, OF/KL, accuracy, Transition Point")
    _common_model(p)
    _common_task(p)
    p.add_argument("--out", required=True)
    _common_measure(p)
    p.add_argument("--tau", type=float, default=0.0, help="Transition Point tolerance")
    p.add_argument("--n-boot", type=int, default=1000)
    p.set_defaults(func=cmd_analyze)
