"""Trainer: fitting, evaluation, schedulers, clipping, callbacks, logging, progress, plots and bad input."""

from __future__ import annotations

import io
import json
import math
import os

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
    NonFiniteLossError,
    ProgressBar,
    Trainer,
    load_checkpoint,
    plot_history,
)
from deepgrad.train.progress import epoch_summary


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]).astype(np.float32)
    return x, y


def _loaders(batch_size=16):
    x, y = _blobs()
    train = DataLoader(TensorDataset(x[:90], y[:90]), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x[90:], y[90:]), batch_size=32)
    return train, val


def _model(seed=0, hidden=16):
    dg.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def test_fit_learns_and_records_history():
    train, val = _loaders()
    model = _model()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05),
                      metrics=["accuracy", "f1", "top2_accuracy"], progress=False)
    history = trainer.fit(train, val, epochs=5)
    assert history.epochs == [1, 2, 3, 4, 5] and trainer.epoch == 5 and trainer.global_step == 5 * len(train)
    assert set(history.keys()) == {"loss", "accuracy", "f1", "top2_accuracy", "val_loss", "val_accuracy", "val_f1",
                                   "val_top2_accuracy", "lr"}
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.85
    result = trainer.evaluate(val, metrics=["accuracy", "confusion_matrix"])
    assert result["loss"] == history["val_loss"][-1] and result["accuracy"] == history["val_accuracy"][-1]
    assert result["confusion_matrix"].sum() == 30
    preds = trainer.predict(val)
    assert preds.shape == (30, 3)
    assert np.mean(preds.argmax(1) == _blobs()[1][90:]) == result["accuracy"]
    assert model.training


def test_epoch_loss_is_the_exact_sample_mean():
    """The epoch loss weights each batch by its size (the last batch is short), and validation matches evaluate()."""
    x, y = _blobs(50)
    model = _model()
    seen = []
    record = LambdaCallback(on_batch_end=lambda b, logs: seen.append((logs["loss"], logs["size"])))
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0), progress=False,
                      callbacks=[record])
    history = trainer.fit(DataLoader(TensorDataset(x, y), batch_size=16), epochs=1)
    assert [n for _, n in seen] == [16, 16, 16, 2]
    assert history["loss"][0] == sum(loss * n for loss, n in seen) / 50
    with dg.no_grad():
        full = float(nn.CrossEntropyLoss()(model(dg.tensor(x)), dg.tensor(y)).item())
    assert history["loss"][0] == pytest.approx(full, rel=1e-6)


def test_train_and_eval_modes():
    class ModeProbe(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.modes = nn.Linear(4, 3), []

        def forward(self, x):
            self.modes.append(self.training)
            return self.fc(x)

    train, val = _loaders(batch_size=45)
    model = ModeProbe()
    Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), progress=False).fit(
        train, val, epochs=1)
    assert model.modes == [True, True, False] and model.training


def test_per_batch_and_plateau_schedulers():
    train, val = _loaders()
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3 * len(train))
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched, progress=False)
    assert trainer.scheduler_interval == "step"
    trainer.fit(train, val, epochs=3)
    assert sched.last_epoch == 3 * len(train)

    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.01, maximize=True)  # the loss only gets worse: the lr must be cut
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    monitored = []
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched, progress=False,
                      callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: monitored.append(logs["val_loss"]))])
    history = trainer.fit(train, val, epochs=4)
    assert sched.best == min(monitored)  # it was given val_loss
    assert history["lr"] == [0.01, 0.01, 0.005, 0.0025]  # logged: the lr each epoch trained with


@pytest.mark.parametrize("clip", [{"grad_clip_norm": 0.05}, {"grad_clip_value": 0.01}])
def test_gradient_clipping(clip):
    train, _ = _loaders()
    model = _model()
    seen = []

    def check(batch, logs):
        grads = [p.grad.array for p in model.parameters()]
        seen.append((math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)),
                     max(float(np.abs(g).max()) for g in grads), logs.get("grad_norm")))

    Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), progress=False,
            callbacks=[LambdaCallback(on_before_optimizer_step=check)], **clip).fit(train, epochs=1)
    if "grad_clip_norm" in clip:
        assert all(norm <= 0.05 * (1 + 1e-5) for norm, _, _ in seen)
        assert all(total > 0.05 for _, _, total in seen)  # the raw norms were larger: clipping really happened
    else:
        assert all(biggest <= 0.01 for _, biggest, _ in seen) and max(b for _, b, _ in seen) == pytest.approx(0.01)


def test_early_stopping_restores_best_weights_on_overfitting_run(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20)).astype(np.float32)
    y = rng.integers(0, 2, 60)  # random labels: the training set can only be memorised, validation gets worse
    train = DataLoader(TensorDataset(x[:20], y[:20]), batch_size=20)
    val = DataLoader(TensorDataset(x[20:], y[20:]), batch_size=40)
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 2))
    stopper = EarlyStopping("val_loss", patience=3, restore_best_weights=True)
    ckpt = ModelCheckpoint(tmp_path, filename="best-{epoch:02d}", monitor="val_loss", save_best_only=True)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01), progress=False,
                      callbacks=[ckpt, stopper])  # given in the "wrong" order: checkpoints still run last
    history = trainer.fit(train, val, epochs=100)
    val_loss = history["val_loss"]
    best = int(np.argmin(val_loss))
    assert history["loss"][-1] < history["loss"][0] and val_loss[-1] > val_loss[best]  # it did overfit
    assert len(history) == best + 1 + 3 < 100 and stopper.stopped_epoch == best + 3
    assert "did not improve for 3 epoch(s)" in trainer.stop_reason
    assert trainer.evaluate(val)["loss"] == val_loss[best]  # the restored weights are the best epoch's, exactly
    assert ckpt.best_model_path == os.path.join(tmp_path, f"best-{best + 1:02d}.ckpt")
    saved = load_checkpoint(ckpt.best_model_path)["model"]
    for k, v in model.state_dict().items():
        assert np.array_equal(saved[k], v.array)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]


def test_history_loggers(tmp_path):
    train, val = _loaders()
    model = _model()
    Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
            metrics=["accuracy"], progress=False,
            callbacks=[CSVLogger(tmp_path / "h.csv"), JSONLogger(tmp_path / "h.json")]).fit(train, val, epochs=3)
    data = json.loads((tmp_path / "h.json").read_text())
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert data["epoch"] == [1, 2, 3] and len(data["val_accuracy"]) == 3
    assert rows[0].split(",") == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert [float(v) for v in rows[3].split(",")[1:]] == [data[k][2] for k in rows[0].split(",")[1:]]
    Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), progress=False,
            log_dir=str(tmp_path / "run")).fit(train, val, epochs=2)
    assert sorted(os.listdir(tmp_path / "run")) == ["history.csv", "last.ckpt"]
    assert load_checkpoint(tmp_path / "run" / "last.ckpt")["history"]["epochs"] == [1, 2]


def test_progress_plain_lines_off_a_terminal_live_bar_on_one_and_80_columns():
    train, val = _loaders()
    model = _model()
    buf = io.StringIO()  # not a terminal, as stderr redirected to a log file
    metrics = ["accuracy", "f1", "top2_accuracy"]  # more numbers than 80 columns hold
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), metrics=metrics,
                      callbacks=[ProgressBar(file=buf)])
    trainer.fit(train, val, epochs=2)
    out = buf.getvalue()
    lines = out.splitlines()
    assert "\r" not in out and len(lines) == 4  # per epoch a training and a validation line, no bar redraws
    assert all(len(line) <= 80 for line in lines), lines
    for epoch in (1, 2):
        train_line, val_line = lines[2 * epoch - 2:2 * epoch]
        assert train_line.startswith(f"Epoch {epoch}/2  loss ") and " top2_acc " in train_line
        numbers = dict(zip(val_line.split()[::2], val_line.split()[1::2]))
        assert list(numbers) == ["val_loss", "val_acc", "val_f1", "val_top2_acc"]
        assert numbers["val_f1"] == f"{trainer.history['val_f1'][epoch - 1]:.4g}"

    live = io.StringIO()
    Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), metrics=["accuracy"],
            callbacks=[ProgressBar(file=live, live=True)]).fit(train, val, epochs=1)
    shown = live.getvalue()
    assert "\r" in shown and f"/{len(train)} [" in shown  # the tqdm bar over the epoch's batches
    summary = shown.rsplit("\r", 1)[-1]  # the bar erased (carriage return), the summary line in its place
    assert summary.startswith("Epoch 1/1  loss ") and summary.endswith("\n") and len(summary) <= 81

    auto = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1))  # stderr is not a TTY here
    assert not any(isinstance(c, ProgressBar) for c in auto.callbacks)
    forced = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), progress=True)
    assert any(isinstance(c, ProgressBar) for c in forced.callbacks)
    with pytest.raises(ValueError, match="progress must be"):
        Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), progress="yes")


def test_epoch_summary_keeps_validation_numbers_when_space_runs_out():
    logs = {"loss": 0.123456, "accuracy": 0.9, "precision": 0.91, "recall": 0.92, "val_loss": 0.2345,
            "val_accuracy": 0.88, "lr": 0.001}
    train_line, val_line = epoch_summary(12, 100, logs, seconds=3.25, width=44).split("\n")
    assert train_line == "Epoch 12/100  loss 0.1235  acc 0.9  lr 0.001"  # precision, recall, time do not fit
    assert val_line == " " * 12 + "  val_loss 0.2345  val_acc 0.88"
    assert "  ".join(["Epoch 12/100", "loss 0.1235", "acc 0.9", "precision 0.91", "recall 0.92", "val_loss 0.2345",
                      "val_acc 0.88", "lr 0.001", "3.2s"]) == epoch_summary(12, 100, logs, 3.25, width=200)


def test_plot_history(tmp_path):
    train, val = _loaders()
    model = _model()
    history = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), metrics=["accuracy"],
                      progress=False).fit(train, val, epochs=3)
    for source in (history, {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}):
        path = plot_history(source, tmp_path / "h.png")
        data = open(path, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError, match="empty"):
        plot_history({"epochs": [], "history": {}}, tmp_path / "e.png")


class _NaNAfter:
    """Cross-entropy that turns NaN from the `step`-th call on (a constructed divergence)."""

    def __init__(self, step):
        self.step, self.calls = step, 0

    def __call__(self, out, target):
        self.calls += 1
        loss = nn.functional.cross_entropy(out, target)
        return loss * float("nan") if self.calls >= self.step else loss


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_checkpoint(tmp_path):
    train, val = _loaders()  # 6 batches per epoch
    model = _model()
    trainer = Trainer(model, _NaNAfter(8), optim.SGD(model.parameters(), lr=0.1), progress=False,
                      callbacks=[ModelCheckpoint(tmp_path, filename=None)])
    trainer.evaluate = lambda loader, metrics=None: {}  # keep validation from consuming the loss's calls
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2/3, batch 1 \(global step 8\)"):
        trainer.fit(train, val, epochs=3)
    state = load_checkpoint(tmp_path / "last.ckpt")
    assert state["trainer"]["epoch"] == 1 and state["trainer"]["global_step"] == 6
    assert all(np.all(np.isfinite(p.array)) for p in model.parameters())
    assert trainer.global_step == 7  # stopped before the 8th optimizer step

    model = _model()
    trainer = Trainer(model, _NaNAfter(3), optim.SGD(model.parameters(), lr=0.1), progress=False,
                      on_nonfinite="stop")
    with pytest.warns(RuntimeWarning, match="batch 2"):
        history = trainer.fit(train, epochs=3)
    assert len(history) == 0 and "global step 3" in trainer.stop_reason


def test_mismatched_sample_and_label_counts():
    model = _model()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), progress=False)
    x, y = _blobs(16)
    loader = [(dg.tensor(x[:8]), dg.tensor(y[:8])), (dg.tensor(x[8:]), dg.tensor(y[8:15]))]
    with pytest.raises(ValueError, match=r"training batch 1 of epoch 1 has mismatched sample counts .*8, 7"):
        trainer.fit(loader, epochs=1)

    def drop_one_label(samples):
        xs, ys = zip(*samples)
        return dg.stack(list(xs)), dg.stack(list(ys)[:-1])

    bad = DataLoader(TensorDataset(x, y), batch_size=4, collate_fn=drop_one_label)
    with pytest.raises(ValueError, match=r"evaluation batch 0 has mismatched sample counts .*4, 3"):
        trainer.evaluate(bad)
    with pytest.raises(ValueError, match="no targets"):
        trainer.fit([dg.tensor(x)], epochs=1)


def test_multiple_inputs_and_numpy_batches():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x1, x2):
            return self.a(x1) + self.b(x2)

    x, y = _blobs(32)
    model = Two()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), device="cpu",
                      progress=False)
    batches = [(x[i:i + 8], x[i:i + 8] * 2, y[i:i + 8]) for i in range(0, 32, 8)]  # raw NumPy batches
    history = trainer.fit(batches, epochs=2)
    assert len(history) == 2
    assert trainer.predict(batches).shape == (32, 3)


def test_callback_hook_order():
    calls = []

    class Recorder(Callback):
        def __getattribute__(self, name):
            if name.startswith("on_"):
                calls.append(name)
            return object.__getattribute__(self, name)

    x, y = _blobs(8)
    model = _model()
    Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), callbacks=[Recorder()],
            progress=False).fit([(x, y)], epochs=1)
    assert calls == ["on_train_begin", "on_epoch_begin", "on_batch_begin", "on_after_backward",
                     "on_before_optimizer_step", "on_batch_end", "on_epoch_logs", "on_epoch_end", "on_train_end"]


@pytest.mark.skipif(not dg.cuda_is_available(), reason="needs a CUDA GPU (CuPy)")
def test_fit_checkpoint_and_monitor_on_cuda(tmp_path):
    from deepgrad.diagnostics import GradientFlowMonitor

    train, val = _loaders()
    model = _model()
    monitor = GradientFlowMonitor(model)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05), metrics=["accuracy"],
                      device="cuda", progress=False, callbacks=[monitor, ModelCheckpoint(tmp_path, filename=None)])
    history = trainer.fit(train, val, epochs=3)
    assert history["val_accuracy"][-1] > 0.85 and model[0].weight.device.type == "cuda"
    assert isinstance(trainer.predict(val), np.ndarray)
    assert monitor.verdict().status == "healthy"
    resumed_model = _model(seed=5)
    resumed = Trainer(resumed_model, nn.CrossEntropyLoss(), optim.Adam(resumed_model.parameters(), lr=0.05),
                      metrics=["accuracy"], device="cuda", progress=False)
    resumed.load_checkpoint(str(tmp_path / "last.ckpt"))
    for k, v in model.state_dict().items():
        assert np.array_equal(resumed_model.state_dict()[k].array.get(), v.array.get())
