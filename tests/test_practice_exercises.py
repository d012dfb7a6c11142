"""Every exercise through the real judge: its reference solution passes, and every mutant it ships (the
classic bugs) fails, naming the mistake where the mutant says it must. Also: the bank is complete, and the
judge imports nothing from disk after a candidate ran."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from deepgrad.autograd import is_grad_enabled
from deepgrad.practice import all_exercises, judge_source

IDS = list(all_exercises())


def test_bank_covers_the_issue_and_every_exercise_ships_mutants():
    bank = all_exercises()
    assert len(bank) >= 46
    for ex in bank.values():
        assert ex.statement and ex.starter and ex.solution and ex.hints, ex.id
        assert ex.difficulty in (1, 2, 3) and ex.topic and ex.question, ex.id
        assert (ex.reference is None) != (ex.judge_case is None), ex.id
        assert len(ex.mutants) >= 2, f"{ex.id} ships {len(ex.mutants)} mutant(s); at least two are required"
        sources = {m.apply(ex.solution) for m in ex.mutants}  # raises when an edit does not match exactly once
        assert ex.solution not in sources and len(sources) == len(ex.mutants), ex.id
    topics = {ex.topic for ex in bank.values()}
    assert {"backprop", "cnns", "pooling", "rnns", "overfitting", "transfer-learning", "gans", "transformers"} <= topics
    # issue 20's exercises, mapped to guide topic 15 (the topic `deepgrad practice stats` lists them under)
    from deepgrad.guide import TOPICS
    from deepgrad.practice.cli import GUIDE_TOPICS

    for ex_id in ("attention-forward", "attention-backward", "multi-head-split", "layernorm-backward",
                  "positional-encoding", "softmax-backward"):
        assert bank[ex_id].topic == "transformers", ex_id
    assert list(TOPICS)[14] == "transformers" and tuple(TOPICS) == GUIDE_TOPICS


def test_the_reference_passes_and_every_mutant_fails_for_every_exercise():
    """The whole sweep through the real judge (sandbox included), two checks at a time."""
    jobs = []
    for ex in all_exercises().values():
        jobs.append((ex, None))
        jobs += [(ex, m) for m in ex.mutants]

    def run(job):
        ex, mutant = job
        source = ex.solution if mutant is None else mutant.apply(ex.solution)
        return ex, mutant, judge_source(ex, source, "solution.py" if mutant is None else "mutant.py")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, jobs))
    wrong = []
    for ex, mutant, v in results:
        if mutant is None:
            if not (v.passed and v.cases_passed == v.cases_total > 0):
                wrong.append(f"{ex.id}: the reference failed:\n{v.report}")
        elif v.passed:
            wrong.append(f"{ex.id}: mutant '{mutant.bug}' PASSED")
        elif v.status != "failed" or "case " not in v.report:
            wrong.append(f"{ex.id}: mutant '{mutant.bug}' failed without naming a case ({v.status}):\n{v.report}")
        elif mutant.mentions and mutant.mentions not in v.report:
            wrong.append(f"{ex.id}: mutant '{mutant.bug}' failed without '{mutant.mentions}':\n{v.report}")
    assert not wrong, "\n\n".join(wrong)
    # grading flips deepgrad's process-wide grad mode (no_grad for finite differences): two judges in two threads
    # must leave it as they found it
    assert is_grad_enabled()
    print(f"{len(jobs)} checks in {time.perf_counter() - t0:.1f} s")


@pytest.mark.parametrize("ex_id", ["relu", "conv2d-forward"])
def test_starter_file_fails_without_crashing(ex_id):
    from deepgrad.practice.cli import starter_file

    v = judge_source(ex_id, starter_file(all_exercises()[ex_id]), "starter.py")
    assert not v.passed and v.status == "failed"
    assert "expected a NumPy array" in v.report


GRADE_EVERYTHING = r"""
import sys
import numpy as np
from deepgrad.practice import all_exercises
from deepgrad.practice.exercise import RNG
from deepgrad.practice.exercises import preload
from deepgrad.practice.judge import draw_cases, grade_case

preload()
before = {m for m in sys.modules if m.startswith("deepgrad")}
for ex in all_exercises().values():
    for source in (ex.solution, ex.mutants[0].apply(ex.solution)):  # a mutant's failures run the recognisers
        ns = {}
        exec(source, ns)
        for case in draw_cases(ex):
            args = {k: (np.random.default_rng() if isinstance(v, tuple) and v == RNG else v)
                    for k, v in case.args.items()}
            try:
                got = {"value": ns[case.func](**args)}
            except Exception as exc:
                got = {"error": repr(exc)}
            grade_case(ex, case, got)
late = sorted({m for m in sys.modules if m.startswith("deepgrad")} - before)
print("LATE", late)
"""


def test_grading_imports_nothing_after_the_candidate_ran():
    """preload() imports every deepgrad module that references, statistical judges and recognisers use: grading
    every exercise (references and a mutant) afterwards imports no further module from disk."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", GRADE_EVERYTHING], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LATE []" in out.stdout, out.stdout[-2000:] + "\nadd these to exercises.REFERENCE_MODULES"
