"""``deepgrad.train``: the training loop (TrainingLoop, and Trainer on it), metrics, callbacks, checkpoints with
exact resume, history, progress bars and plots.

>>> from deepgrad import nn, optim
>>> from deepgrad.data import DataLoader
>>> from deepgrad.data.datasets import make_xor
>>> from deepgrad.train import Trainer, EarlyStopping, ModelCheckpoint, plot_history
>>> train_loader = DataLoader(make_xor(16, seed=0), batch_size=8, shuffle=True)
>>> val_loader = DataLoader(make_xor(16, seed=1), batch_size=8)
>>> model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
>>> trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), 1e-3), metrics=["accuracy"],
...                   callbacks=[EarlyStopping(patience=3, restore_best_weights=True)], progress=True)
>>> history = trainer.fit(train_loader, val_loader, epochs=2)
>>> history.epochs, sorted(history.history)
([1, 2], ['accuracy', 'loss', 'lr', 'val_accuracy', 'val_loss'])
>>> plot_history(history, "history.png")
'history.png'
"""

from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    HistoryLogger,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
)
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .guards import NonFiniteGradientError, check_finite_gradients
from .history import History
from .loop import NonFiniteLossError, TrainingLoop
from .metrics import (
    Accuracy,
    ConfusionMatrix,
    F1Score,
    MeanAbsoluteError,
    MeanSquaredError,
    Metric,
    Precision,
    Recall,
    TopKAccuracy,
    accuracy,
    confusion_matrix,
    get_metric,
    model_accuracy,
    precision_recall_f1,
    top_k_accuracy,
)
from .plots import plot_history
from .progress import ProgressBar
from .trainer import Trainer

__all__ = [
    "Trainer", "TrainingLoop", "NonFiniteLossError", "NonFiniteGradientError", "check_finite_gradients", "History",
    "plot_history",
    "Callback", "LambdaCallback", "EarlyStopping", "ModelCheckpoint", "HistoryLogger", "CSVLogger", "JSONLogger",
    "ProgressBar", "save_checkpoint", "load_checkpoint", "CheckpointError",
    "Metric", "Accuracy", "TopKAccuracy", "MeanSquaredError", "MeanAbsoluteError", "ConfusionMatrix",
    "Precision", "Recall", "F1Score", "get_metric",
    "accuracy", "model_accuracy", "top_k_accuracy", "confusion_matrix", "precision_recall_f1",
]
