"""Fit the rational tanh of deepgrad/kernels/compiled.py: tanh(x) ~ x P(x^2) / Q(x^2), Q(0) = 1.

Minimax relative error on [0, 9.1] (beyond, float32's tanh is 1) by Lawson's iteration: weighted linear least
squares on the linearised residual x P - tanh(x) Q, divided by the previous Q so that it approximates the
relative error, with the weights multiplied by each point's |error| after every round. The variable is scaled
to u = x^2 / 9.1^2 in [0, 1] to keep the system well conditioned; the coefficients are converted back to powers
of x^2 at the end. Prints the coefficients and the maximum relative error on the fitting grid; --check compares
them with the ones in the kernel module.

    python scripts/fit_tanh.py [--check]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

CLAMP = 9.1
DEG_P, DEG_Q = 6, 4  # in x^2: numerator x^13, denominator x^8


def fit(deg_p: int = DEG_P, deg_q: int = DEG_Q, rounds: int = 300) -> tuple:
    """(P, Q, max relative error): P and Q in powers of x^2, Q[0] = 1."""
    x = np.concatenate([np.linspace(1e-4, CLAMP, 100001), np.geomspace(1e-5, 1e-1, 2000)])
    s = CLAMP * CLAMP
    u = x * x / s
    y = np.tanh(x)
    w = np.full_like(x, 1 / x.size)
    q = np.ones_like(x)
    best = (np.inf, None, None)
    for _ in range(rounds):
        a = np.concatenate([x[:, None] * u[:, None] ** np.arange(deg_p + 1),
                            -y[:, None] * u[:, None] ** np.arange(1, deg_q + 1)], axis=1)
        wt = np.sqrt(w) / (y * q)
        coef, *_ = np.linalg.lstsq(a * wt[:, None], y * wt, rcond=None)
        p, qq = coef[:deg_p + 1], np.concatenate([[1.0], coef[deg_p + 1:]])
        q = np.polyval(qq[::-1], u)
        err = (x * np.polyval(p[::-1], u) / q - y) / y
        if np.abs(err).max() < best[0]:
            best = (np.abs(err).max(), p.copy(), qq.copy())
        w = w * np.abs(err)
        w /= w.sum()
    e, p, qq = best
    return p / s ** np.arange(deg_p + 1), qq / s ** np.arange(deg_q + 1), e


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the kernel module's coefficients")
    args = parser.parse_args()
    p, q, err = fit()
    print("P =", tuple(float(v) for v in p))
    print("Q =", tuple(float(v) for v in q))
    print(f"max relative error on the grid: {err:.3g}")
    if args.check:
        from deepgrad.kernels import compiled as rc
        shipped_p = np.array([rc.P0, rc.P1, rc.P2, rc.P3, rc.P4, rc.P5, rc.P6])
        shipped_q = np.array([rc.Q0, rc.Q1, rc.Q2, rc.Q3, rc.Q4])
        same = np.allclose(p, shipped_p, rtol=1e-12, atol=0) and np.allclose(q, shipped_q, rtol=1e-12, atol=0)
        print("the kernel's coefficients:", "identical to 12 digits" if same else "DIFFERENT")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
