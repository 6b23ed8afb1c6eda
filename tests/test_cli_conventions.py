"""One CLI, in the ecosystem's conventions (issue 15): every option has help and shows its default; lm-eval's
spellings work (--output_path, --num_fewshot, --batch_size, --limit as a fraction); --tasks everywhere (--task a
deprecated alias, one task where a command measures one); one task-name resolver (mmlu_anatomy = mmlu:anatomy = lm-eval
0.3's hendrycksTest-anatomy: same samples, same few-shot contexts); a wrong --method lists the valid names (exit 2);
--score auto = norm for cloze, the letter logit for letter; progress from the first second."""
import argparse

import pytest

from helpers import write_tiny_qa
from prunelens.cli import build_parser, main
from prunelens.commands.common import score_kind
from prunelens.tasks import canonical_name, load_task, resolve_limit, resolve_task, split_task_list


def _subparsers():
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _options(p):
    return [a for a in p._actions if a.option_strings and not isinstance(a, argparse._HelpAction)
            and a.help != argparse.SUPPRESS]


# ------------------------------------------------------------------------------------------------ help and defaults
def test_every_option_has_help_and_shows_its_default(capsys):
    cmds = _subparsers()
    assert {"analyze", "prune", "eval", "report", "recover", "correlate"} <= set(cmds)
    for name, p in cmds.items():
        assert issubclass(p.formatter_class, argparse.ArgumentDefaultsHelpFormatter), name
        fmt = p.formatter_class(prog=p.prog)
        for a in _options(p):
            assert a.help and a.help.strip(), (name, a.option_strings)
            if not a.required:
                assert "(default" in fmt._get_help_string(a), (name, a.option_strings)
        capsys.readouterr()
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        for a in _options(p):
            assert a.option_strings[0] in text, (name, a.option_strings)
        if any(not a.required and a.default not in (None, False) for a in _options(p)):
            assert "(default:" in text, name


def test_ratio_says_it_is_the_fraction_removed():
    cmds = _subparsers()
    for name in ("prune", "cka"):
        ratio = next(a for a in _options(cmds[name]) if "--ratio" in a.option_strings)
        assert "fraction of layers removed" in ratio.help, name


def test_no_flag_has_two_meanings():
    cmds = _subparsers()
    visible = {name: {o for a in _options(p) for o in a.option_strings} for name, p in cmds.items()}
    assert "--steps" not in visible["prune"] and "--steps" not in visible["recover"]
    assert "--remove-count" in visible["prune"] and "--train-steps" in visible["recover"]
    for name, opts in visible.items():                   # --tasks everywhere a command reads benchmark tasks
        assert "--task" not in opts, name
    for name in ("analyze", "prune", "cka", "noise", "controls", "ablate", "eval", "recover"):
        assert "--tasks" in visible[name], name


# ------------------------------------------------------------------------------------------------ aliases
def test_lm_eval_spellings():
    ap = build_parser()
    a = ap.parse_args(["eval", "--tasks", "arc_easy", "--output_path", "o", "--num_fewshot", "3", "--batch_size", "4",
                       "--limit", "0.5", "--data_dir", "d"])
    assert (a.out, a.num_fewshot, a.batch_size, a.limit, a.data_dir) == ("o", 3, 4, 0.5, "d")
    a = ap.parse_args(["analyze", "--tasks", "piqa", "--output-path", "o", "--limit", "7"])
    assert (a.task, a.out, a.limit) == ("piqa", "o", 7)


def test_deprecated_spellings_still_work_with_a_note(capsys):
    ap = build_parser()
    capsys.readouterr()
    a = ap.parse_args(["prune", "--method", "tail", "--steps", "2", "--task", "piqa", "--out", "o"])
    assert (a.remove_count, a.task, a.ratio) == (2, "piqa", None)
    err = capsys.readouterr().err
    assert "--steps is deprecated, use --remove-count" in err and "--task is deprecated, use --tasks" in err
    a = ap.parse_args(["recover", "--steps", "7", "--out", "o"])
    assert a.train_steps == 7
    assert ap.parse_args(["recover", "--train-steps", "9", "--out", "o"]).train_steps == 9


def test_one_task_commands_say_so(capsys):
    rc = main(["analyze", "--tasks", "arc_easy,piqa", "--out", "o"])
    err = capsys.readouterr().err
    assert rc == 2 and "exactly one task" in err and "arc_easy, piqa" in err
    # a pooled MMLU subset is one task
    a = build_parser().parse_args(["analyze", "--tasks", "mmlu:anatomy,virology", "--out", "o"])
    assert a.task == "mmlu:anatomy,virology"


def test_limit_fraction(tmp_path, capsys):
    assert resolve_limit(0.5, 10) == 5 and resolve_limit(0.25, 10) == 3 and resolve_limit(3, 10) == 3
    assert resolve_limit(None, 10) is None
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 10)
    assert len(load_task(str(spec), limit=0.5).samples) == 5
    assert len(load_task(str(spec), limit=0.01).samples) == 1          # ceil, as lm-eval
    for bad in ("1.5", "0", "-0.5", "x"):
        assert main(["eval", "--tasks", "arc_easy", "--limit", bad, "--out", str(tmp_path / "o")]) == 2
        assert "--limit" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ one task resolver
def test_every_mmlu_spelling_is_one_task_definition():
    names = ["mmlu_anatomy", "mmlu:anatomy", "hendrycksTest-anatomy", " mmlu_anatomy "]
    assert {resolve_task(n)[0].name for n in names} == {"mmlu"}
    assert {resolve_task(n)[1] for n in names} == {("anatomy",)}
    assert {canonical_name(n) for n in names} == {"mmlu:anatomy"}
    assert split_task_list("arc_easy,mmlu:anatomy,virology,piqa") == ["arc_easy", "mmlu:anatomy,virology", "piqa"]
    assert split_task_list("mmlu_anatomy,mmlu_virology") == ["mmlu_anatomy", "mmlu_virology"]
    from prunelens.evaluate.fewshot import lm_eval_fewshot_split, uses_first_n
    for n in names:
        assert uses_first_n(n) and lm_eval_fewshot_split(n) == "dev"
    assert not uses_first_n("arc_easy") and lm_eval_fewshot_split("arc_easy") == "train"


def test_mmlu_names_give_the_same_samples_and_fewshot_contexts(data_dir):
    from prunelens.evaluate import prepare_task
    got = [prepare_task(n, data_dir=data_dir, limit=3, num_fewshot=5)
           for n in ("mmlu_anatomy", "mmlu:anatomy", "hendrycksTest-anatomy")]
    first = got[0]
    assert first[0].name == "mmlu:anatomy" and first[2] == {"split": "dev", "seed": 1234, "sampler": "first_n"}
    dev = [s for s in load_task("mmlu:anatomy", split="dev", data_dir=data_dir).samples][:5]
    for task, n_orig, fs in got:
        assert (task.name, task.split, n_orig, fs) == (first[0].name, first[0].split, first[1], first[2])
        assert [(s.id, s.contexts, s.continuations, s.gold) for s in task.samples] == \
            [(s.id, s.contexts, s.continuations, s.gold) for s in first[0].samples]
    for s in first[0].samples:                      # the subject's first five dev rows, in order, after the description
        ctx = s.contexts[0]
        assert all(d.contexts[0].split("\n\n", 1)[1] in ctx for d in dev)
        assert [ctx.index(d.contexts[0].split("\n\n", 1)[1]) for d in dev] == \
            sorted(ctx.index(d.contexts[0].split("\n\n", 1)[1]) for d in dev)


# ------------------------------------------------------------------------------------------------ choices
@pytest.mark.parametrize("cmd,valid", [
    (["prune", "--method", "nope", "--ratio", "0.5"], ("iterative", "transition-aware")),
    (["correlate", "x", "--method", "nope"], ("iterative", "iterative+skip")),
    (["recover", "--mode", "nope"], ("lora", "full")),
    (["analyze", "--score", "nope"], ("auto", "raw", "norm")),
    (["sweep", "s.yaml", "--backend", "nope"], ("local", "ray"))])
def test_wrong_choice_lists_the_valid_names(cmd, valid, tmp_path, capsys):
    capsys.readouterr()
    assert main([*cmd, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and all(v in err for v in valid), err
    assert len([x for x in err.splitlines() if x.startswith("prunelens")]) == 1


# ------------------------------------------------------------------------------------------------ --score auto
def test_score_auto_is_norm_for_cloze_and_the_letter_logit_for_letter():
    ap = build_parser()
    for cmd in (["analyze"], ["prune", "--method", "tail", "--ratio", "0.5"], ["noise"], ["cka"], ["controls"],
                ["ablate", "--tasks", "arc_easy"], ["recover"]):
        a = ap.parse_args([*cmd, "--out", "o"])
        assert a.score == "auto" and score_kind(a) == "norm", cmd
        assert score_kind(ap.parse_args([*cmd, "--format", "letter", "--out", "o"])) == "raw", cmd
        assert score_kind(ap.parse_args([*cmd, "--score", "raw", "--out", "o"])) == "raw", cmd
    with pytest.raises(ValueError, match="cloze only"):
        score_kind(ap.parse_args(["analyze", "--format", "letter", "--score", "norm", "--out", "o"]))


def test_analyze_default_measures_acc_norm(tmp_path):
    import json

    from tiny import save_model
    ckpt = save_model("llama", tmp_path / "m", num_layers=2)
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 6)
    out = tmp_path / "a"
    assert main(["analyze", "--model", str(ckpt), "--tasks", str(spec), "--device", "cpu", "--n-boot", "20",
                 "--out", str(out)]) == 0
    res = json.loads((out / "analysis.json").read_text())
    assert res["score"] == "norm" and res["acc"] == res["acc_norm"]


# ------------------------------------------------------------------------------------------------ progress
def test_first_progress_line_comes_before_the_model_load(tmp_path, capsys):
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 4)
    capsys.readouterr()
    rc = main(["analyze", "--model", str(tmp_path / "no-such-model"), "--tasks", str(spec), "--out",
               str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.index("[prunelens] analyze: loading task") < err.index("[prunelens] loading model")


# ------------------------------------------------------------------------------------------------ --out is a folder
def test_report_out_is_a_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    assert main(["report", str(runs), "--output_path", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").is_file()
    capsys.readouterr()
    assert main(["report", str(runs), "--out", str(tmp_path / "old.html")]) == 0      # the deprecated form
    assert (tmp_path / "old.html").is_file() and "deprecated" in capsys.readouterr().err
    # the report folder may sit inside a run folder, never be one (--overwrite would replace its files)
    assert main(["report", str(runs), "--out", str(runs), "--overwrite"]) == 2
    assert main(["report", str(runs), "--out", str(runs / "report")]) == 0
