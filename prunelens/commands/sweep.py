"""`prunelens sweep`: a YAML grid of models x tasks x methods x seeds, one evaluation per run, in-process or on
Ray (`--backend ray [--address auto]`); finished runs are skipped when re-run."""
from __future__ import annotations


def cmd_sweep(a) -> int:
    from ..sweep import load_spec, run_sweep
    from .common import prepare_out
    _, raw = load_spec(a.spec)                   # a bad spec fails here, before anything is written
    out = a.out or raw.get("out") or "sweep-out"
    prepare_out(a, ("spec", a.spec), resume="runs", out=out)   # finished runs in OUT/runs are skipped (resume)
    rows = run_sweep(a.spec, out, backend=a.backend, address=a.address, cpus_per_run=a.cpus_per_run,
                     gpus_per_run=a.gpus_per_run)
    for r in rows:
        metrics = ", ".join(f"{k}={r[k]:.4f}" for k in ("acc", "acc_norm") if k in r)
        print(f"{r['run_id']}: {metrics} (n={r['n']}, removed={r['removed']})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a (model x task x method x seed) evaluation grid, locally or on Ray")
    p.add_argument("spec", help="sweep spec YAML (see prunelens/sweep/spec.py)")
    from .common import _common_out, conventions, nonneg_float, positive_float
    _common_out(p, help="output folder (default: the spec's `out`)", required=False)
    p.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="local: one run after another in this process; ray: a Ray cluster (or a local instance)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (auto, ray://host:10001); default: a local Ray instance")
    p.add_argument("--cpus-per-run", type=positive_float, default=1, help="Ray CPUs (and torch threads) per run")
    p.add_argument("--gpus-per-run", type=nonneg_float, default=0, help="Ray GPUs per run")
    p.set_defaults(func=cmd_sweep)
    conventions(p)
