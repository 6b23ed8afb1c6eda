"""The yes/no questions the study scripts ask before spending CPU, in one place. Exit 0 = yes, 1 = no (the reason
on stdout), 3 = the question could not be answered (the error on stderr): a script must stop there, never read a
crash as "no".
  python results/gate.py run-above-chance RUN_DIR          an analyze run (analyze.chance_of_run)
  python results/gate.py trajectory-above-chance TRAJ_JSON  a pruning trajectory's dense model (Figure 8's rule)
  python results/gate.py has-critical TRAJ_JSON              accuracy falls halfway to chance somewhere on it
Run from the project root with the venv active."""
import json
import sys


def main(q: str, path: str) -> int:
    if q == "run-above-chance":
        from prunelens.analyze import chance_of_run
        ok, why = chance_of_run(path)
    elif q == "trajectory-above-chance":
        from prunelens.analyses.correlation import point_from_trajectory
        pt = point_from_trajectory(json.load(open(path)))
        if pt["at_chance"] is None:
            raise ValueError(f"{path}: whether the dense model is above chance is not known (no gold shares: "
                             "python results/backfill_chance.py)")
        ok, why = not pt["at_chance"], pt["at_chance_why"]
    elif q == "has-critical":
        from prunelens.causal.run import critical_removal
        try:
            removed, ratio = critical_removal(json.load(open(path)))
            ok, why = True, f"critical ratio {ratio:.3f}, removed {removed}"
        except ValueError as e:       # never falls halfway: the one expected "no"
            ok, why = False, str(e)
    else:
        raise ValueError(f"unknown question {q!r}")
    print(why)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main(*sys.argv[1:3]))
    except Exception as e:  # noqa: BLE001 - any failure is "cannot answer", exit 3
        print(f"gate: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(3)
