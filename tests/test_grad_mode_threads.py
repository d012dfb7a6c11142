"""Grad mode is per thread, as in torch: ``no_grad`` in one thread never turns recording off in another,
and overlapping blocks in two threads each restore their own thread's mode."""

from __future__ import annotations

import threading

import deepgrad as dg


def test_no_grad_in_one_thread_does_not_reach_another():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def background():
        with dg.no_grad():
            inside.set()
            checked.wait(5)
            seen["background"] = dg.is_grad_enabled()

    t = threading.Thread(target=background)
    t.start()
    inside.wait(5)
    x = dg.ones(2, requires_grad=True)
    seen["main"] = (x * 2).requires_grad
    checked.set()
    t.join()
    assert seen == {"main": True, "background": False}
    assert dg.is_grad_enabled()


def test_overlapping_blocks_in_two_threads_restore_their_own_mode():
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    after = {}

    def first():
        with dg.no_grad():
            a_in.set()
            b_in.wait(5)
        a_out.set()
        after["first"] = dg.is_grad_enabled()

    def second():
        a_in.wait(5)
        with dg.no_grad():
            b_in.set()
            a_out.wait(5)
        after["second"] = dg.is_grad_enabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert after == {"first": True, "second": True} and dg.is_grad_enabled()


def test_a_new_thread_starts_with_recording_on_even_under_no_grad():
    seen = []
    with dg.no_grad():
        t = threading.Thread(target=lambda: seen.append(dg.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]
