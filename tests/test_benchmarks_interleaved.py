"""benchmarks.interleaved: variants alternated in one process, ratios as medians of per-round ratios (machinery
only, no speed assertions)."""

from __future__ import annotations

import pytest

import deepgrad as dg
from benchmarks import interleaved
from deepgrad import kernels


def test_alternate_runs_every_variant_once_per_round_in_order():
    order = []
    variants = {name: (lambda name=name: order.append(name) or {"a": 1.0, "b": 4.0, "c": 2.0}[name])
                for name in "abc"}
    times = interleaved.alternate(variants, 3)
    assert order == list("abc") * 3
    assert times == {"a": [1.0] * 3, "b": [4.0] * 3, "c": [2.0] * 3}


def test_ratio_is_the_median_of_same_round_ratios():
    # per round: 0.5, 2.0, 2.5, 9.0 -> median 2.25; the ratio of the medians would be 7.5 / 2.5 = 3.0
    times = {"x": [1.0, 6.0, 10.0, 9.0], "y": [2.0, 3.0, 4.0, 1.0]}
    assert interleaved.ratio(times, "x", "y") == pytest.approx((2.0 + 2.5) / 2)


def test_block_of_sets_threads_enters_the_context_and_times_at_least_one_step():
    calls, seen = [], []

    class Context:
        def __enter__(self):
            seen.append("enter")

        def __exit__(self, *exc):
            seen.append("exit")

    block = interleaved.block_of(lambda: calls.append(1), seen.append, 3, 0.0, Context)
    assert block() > 0
    assert seen == [3, "enter", "exit"] and len(calls) == 2  # one untimed step after the switch, one timed


def test_numba_vs_numpy_blocks_run_the_compiled_kernels_or_not(monkeypatch):
    pytest.importorskip("numba")
    used = []
    real = kernels.compiled_kernels

    def spy():
        module = real()
        used.append(module is not None)
        return module

    monkeypatch.setattr(kernels, "compiled_kernels", spy)
    from deepgrad.kernels import softmax

    monkeypatch.setattr(softmax, "compiled_kernels", spy)
    before = dg.get_num_threads()
    try:
        blocks = interleaved.variants_for("softmax_256x1000", [1], 0.0, numba_vs_numpy=True)
        assert list(blocks) == ["compiled, 1 thread(s)", "numpy only, 1 thread(s)"]
        blocks["compiled, 1 thread(s)"]()
        assert used and all(used)
        used.clear()
        blocks["numpy only, 1 thread(s)"]()
        assert used and not any(used)
    finally:
        dg.set_num_threads(before)


def test_cli_reports_both_libraries_and_the_speed_ups(capsys):
    pytest.importorskip("torch")
    before = dg.get_num_threads()
    try:
        assert interleaved.main(["--only", "mlp_tiny_nn", "--rounds", "2", "--block-time", "0.01"]) == 0
    finally:
        dg.set_num_threads(before)
    out = capsys.readouterr().out
    assert "mlp_tiny_nn: deepgrad, 1 thread(s)" in out and "torch, 2 thread(s)" in out
    assert "1 thread(s): deepgrad / torch = " in out and "2 thread(s): deepgrad / torch = " in out
    assert "deepgrad speed-up over 1 thread: 2 threads x" in out


def test_cli_refuses_bad_settings():
    with pytest.raises(SystemExit):
        interleaved.main(["--rounds", "0"])
    with pytest.raises(SystemExit):
        interleaved.main(["--threads", "0"])
