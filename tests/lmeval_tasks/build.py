"""Expose the local benchmark files (../shared/data) to lm-eval-harness as custom tasks.

    python tests/lmeval_tasks/build.py /work/shared/data /tmp/pl_tasks     # then: lm_eval --include_path /tmp/pl_tasks

Writes into OUT: JSON Lines files lm-eval's `json` loader can read (ARC test rows with their answer keys merged,
PIQA rows with their labels merged), the YAMLs of this folder with absolute paths, and lm-eval's own hellaswag
utils.py. Task names: pl_arc_easy (eval split: test; few-shot pool: validation), pl_piqa, pl_hellaswag (validation).
`build_mmlu(data_dir, out, subjects)` adds pl_mmlu_<subject> (test split; shots: the subject's first K dev rows).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = {"arc_easy": "pl_arc_easy", "piqa": "pl_piqa", "hellaswag": "pl_hellaswag"}


def _jsonl(path: Path):
    # split on "\n" only: str.splitlines also breaks at U+2028 and friends, which MMLU questions contain
    return [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x.strip()]


def _write(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def build(data_dir, out) -> Path:
    data_dir, out = Path(data_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arc = data_dir / "arc"
    keys = {r["id"]: r["answerKey"] for r in _jsonl(arc / "ARC-Easy-test-answers.jsonl")}
    test = [{**r, "answerKey": keys[r["id"]]} for r in _jsonl(arc / "ARC-Easy-test.jsonl")]
    _write(out / "arc_easy_test.jsonl", test)
    shutil.copy(arc / "ARC-Easy-validation.jsonl", out / "arc_easy_validation.jsonl")
    labels = (data_dir / "piqa" / "valid-labels.lst").read_text().split()
    _write(out / "piqa_validation.jsonl",
           [{**r, "label": int(lab)} for r, lab in zip(_jsonl(data_dir / "piqa" / "valid.jsonl"), labels, strict=True)])
    shutil.copy(data_dir / "hellaswag" / "hellaswag_val.jsonl", out / "hellaswag_validation.jsonl")
    import lm_eval
    shutil.copy(Path(lm_eval.__file__).parent / "tasks" / "hellaswag" / "utils.py", out / "utils.py")
    for y in HERE.glob("pl_*.yaml"):
        (out / y.name).write_text(y.read_text().replace("{DATA}", str(out.resolve())))
    return out


# lm_eval/tasks/mmlu/default/_default_template_yaml + mmlu_<subject>.yaml, read from the local MMLU files. lm-eval's
# `dataset_name: <subject>` selects one subject's config; here build_mmlu writes one JSON Lines file per subject.
MMLU_YAML = """# lm-eval task mirroring lm_eval/tasks/mmlu/default/mmlu_{subject}.yaml (+ _default_template_yaml), local data.
task: pl_mmlu_{subject}
dataset_path: json
dataset_kwargs:
  data_files:
    test: "{data}/mmlu_{subject}_test.jsonl"
    dev: "{data}/mmlu_{subject}_dev.jsonl"
test_split: test
fewshot_split: dev
fewshot_config:
  sampler: first_n
output_type: multiple_choice
description: "The following are multiple choice questions (with answers) about {spaced}.\\n\\n"
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def build_mmlu(data_dir, out, subjects=("anatomy",)) -> Path:
    """pl_mmlu_<subject> tasks (test split evaluated, dev split's first K rows as shots) on the local MMLU files."""
    data_dir, out = Path(data_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {split: _jsonl(data_dir / "mmlu" / f"{split}.jsonl") for split in ("test", "dev")}
    for subject in subjects:
        for split, rs in rows.items():
            _write(out / f"mmlu_{subject}_{split}.jsonl", [r for r in rs if r["subject"] == subject])
        (out / f"pl_mmlu_{subject}.yaml").write_text(MMLU_YAML.format(
            subject=subject, spaced=" ".join(subject.split("_")), data=str(out.resolve())))
    return out


if __name__ == "__main__":
    print(build(sys.argv[1], sys.argv[2]))
