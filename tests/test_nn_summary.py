"""summary(): shapes, parameter counts (trainable and frozen) and the output-size arithmetic."""

import deepgrad as dg
from deepgrad import nn


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
    )


def test_summary_rows_counts_and_arithmetic():
    model = lenet()
    model[0].requires_grad_(False)
    s = summary = nn.summary(model, (1, 28, 28), batch_size=2)
    shapes = [r.output_shape for r in summary.rows]
    assert shapes[0] == (2, 6, 28, 28) and shapes[2] == (2, 6, 14, 14) and shapes[3] == (2, 16, 10, 10)
    assert shapes[6] == (2, 400) and shapes[-1] == (2, 10)
    total = sum(p.numel() for p in model.parameters())
    assert s.total_params == total == 61706
    assert s.frozen_params == 6 * 25 + 6 and s.trainable_params == total - 156
    assert summary.rows[0].frozen == 156 and summary.rows[0].trainable == 0
    assert summary.rows[0].arithmetic == "floor((28+2*2-1*(5-1)-1)/1)+1 = 28, floor((28+2*2-1*(5-1)-1)/1)+1 = 28"
    assert summary.rows[5].arithmetic.startswith("ceil((10+2*0-1*(2-1)-1)/2)+1 = 5")
    text = str(summary)
    assert "Total params: 61,706" in text and "Frozen params: 156" in text


def test_summary_formula_matches_real_layers():
    for n, k, s, p, d in [(28, 5, 1, 0, 1), (32, 3, 2, 1, 1), (17, 3, 2, 2, 2), (9, 4, 3, 0, 1)]:
        conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        out = conv(dg.zeros(1, 1, n, n)).shape[-1]
        assert out == (n + 2 * p - d * (k - 1) - 1) // s + 1
        row = nn.summary(conv, (1, n, n)).rows[0]
        assert row.arithmetic.endswith(f"= {out}")


def test_summary_restores_training_mode():
    model = lenet().train()
    nn.summary(model, (1, 28, 28))
    assert all(m.training for m in model.modules())
