"""MMLU few-shot parity with lm-eval-harness, on a tiny model: every spelling of a subject (`mmlu_anatomy`, lm-eval's
name; `mmlu:anatomy`; lm-eval 0.3's `hendrycksTest-anatomy`) resolves to one task definition, and gets lm-eval's
5-shot contexts (the description, then the subject's first five `dev` rows, `first_n`) and its log-likelihoods.
lm-eval reads the local MMLU files through the custom task that tests/lmeval_tasks/build.py `build_mmlu` writes."""
import numpy as np
import pytest

pytest.importorskip("lm_eval")

from helpers import tiny_lm  # noqa: E402
from lmeval_tasks.build import build_mmlu  # noqa: E402
from lmeval_tasks.harness import run_lm_eval  # noqa: E402
from prunelens.evaluate import evaluate  # noqa: E402

SUBJECT, N, K = "anatomy", 4, 5
NAMES = (f"mmlu_{SUBJECT}", f"mmlu:{SUBJECT}", f"hendrycksTest-{SUBJECT}")


@pytest.fixture(scope="module")
def lm():
    lm = tiny_lm("llama", num_layers=2)
    # 5-shot MMLU prompts are longer than the tiny config's 512 positions; RoPE takes any length, and a larger limit
    # keeps lm-eval from left-truncating the contexts.
    lm.model.config.max_position_embeddings = 4096
    return lm


def test_mmlu_five_shot_parity_for_every_name(lm, data_dir, tmp_path):
    tasks_dir = build_mmlu(data_dir, tmp_path / "tasks", (SUBJECT,))
    pl = f"pl_mmlu_{SUBJECT}"
    theirs, res = run_lm_eval(lm, [pl], tasks_dir, limit=N, batch_size=4, num_fewshot=K, max_length=4096)
    assert len(theirs[pl]) == N
    desc = f"The following are multiple choice questions (with answers) about {SUBJECT}.\n\n"
    for name in NAMES:
        ours = evaluate(lm, [name], data_dir=data_dir, limit=N, num_fewshot=K, batch_size=4, progress=False)[0]
        assert ours.task.name == f"mmlu:{SUBJECT}", name
        assert ours.fewshot == {"split": "dev", "seed": 1234, "sampler": "first_n"}, name
        assert len(ours.task.samples) == N
        for i, (s, resp) in enumerate(zip(ours.task.samples, theirs[pl])):
            assert list(s.contexts) == theirs[pl + "/contexts"][i], f"{name} doc {i}: context differs"
            assert s.contexts[0].startswith(desc) and s.contexts[0].count("\nAnswer:") == K + 1
            ll = np.array([r[0] for r in resp])
            np.testing.assert_allclose(ours.loglik[i, :len(ll)], ll, atol=1e-4, rtol=0, err_msg=f"{name} doc {i}")
        assert ours.metrics["acc"] == pytest.approx(res[pl]["acc,none"], abs=1e-12), name
