"""Move an unfinished run over to the model identity of prunelens.fingerprint after its rule changed, only after
proving the weights are the same. Used once (2026-12-08) for Gemma's HellaSwag trajectory, started under
transformers 5.24.0, when a new venv brought 5.25.0: the reconverted checkpoint differed only in the
`transformers_version` stamp of config.json / generation_config.json, which the old rule hashed as bytes.

Checks, each of which stops the script when it fails, before anything is written (run it while no prune process
writes the run):
  1. the old (byte) rule on --was, a conversion made with the run's own transformers version, gives the key stored in
     the run: --was is the checkpoint the run was computed from;
  2. the new rule gives one key on --was and on --now (the checkpoint in use): they differ at most in version stamps;
  3. every file the identity covers (fingerprint.model_files) but the two stamped configs is byte-identical between
     --was and --now (the configs are equal as JSON but for the stamp, by check 2).
Then trajectory.json's fingerprint.model is rewritten to the new key, then the key of its .resume-cache.npz (in
that order: a stop between the two leaves a cache under the old key, which prune ignores and recomputes; a rerun
finds the trajectory rekeyed and only rekeys the cache).
Usage: python results/rekey_model_identity.py RUN_DIR --was CKPT --now CKPT
"""
import argparse
import filecmp
import json
import sys
from pathlib import Path

import numpy as np

from prunelens.fingerprint import legacy_model_identity, model_files, model_identity
from prunelens.model.load import load_model
from prunelens.prune.trajectory import CACHE_FILE, _cache_key
from prunelens.results import read_json, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--was", type=Path, required=True)
    ap.add_argument("--now", type=Path, required=True)
    a = ap.parse_args()
    path = a.run / "trajectory.json"
    traj = read_json(path)
    was = load_model(str(a.was), device="cpu", log=lambda *x: None)
    new = model_identity(was)
    done = traj.get("rekeyed")                       # a rerun after a stop between the two writes
    stored = done["old_model_identity"] if done and traj["fingerprint"]["model"] == new else traj["fingerprint"]["model"]
    if (k := legacy_model_identity(was)) != stored:
        sys.exit(f"--was is not the run's checkpoint: old rule gives {k}, the run stores {stored}")
    if (k := model_identity(load_model(str(a.now), device="cpu", log=lambda *x: None))) != new:
        sys.exit(f"--now has other weights or configs than --was under the new rule ({k} != {new})")
    for f in model_files(a.was):
        if f.name not in ("config.json", "generation_config.json") and not filecmp.cmp(f, a.now / f.name, shallow=False):
            sys.exit(f"{f.name} differs between --was and --now")
    old_key = _cache_key({**traj, "fingerprint": {**traj["fingerprint"], "model": stored}})
    traj["fingerprint"]["model"] = new
    new_key = _cache_key(traj)
    cache = a.run / CACHE_FILE
    arrays = None
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            arrays = {n: z[n] for n in z.files}
        index = json.loads(str(arrays["index"][()]))
        if index.get("key") not in (old_key, new_key):
            sys.exit(f"{cache} was not written under this run's key")
    traj["rekeyed"] = {"old_model_identity": stored, "new_model_identity": new,
                       "why": "identity rule: configs hashed without transformers_version"}
    write_json(path, traj)
    if arrays is not None and index["key"] != new_key:
        arrays["index"] = np.array(json.dumps({**index, "key": new_key}))
        tmp = cache.with_name(f"{cache.name}.rekey")      # .resume-*: hidden from result listings
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(cache)
    print(f"{path}: model identity {stored} -> {new} (checked: same weights, configs equal but for the version stamp)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
