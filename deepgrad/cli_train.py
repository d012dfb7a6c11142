"""The ``deepgrad train`` and ``deepgrad gan`` subcommands (wired into :mod:`deepgrad.cli`).

    deepgrad train lenet5 --data digits --epochs 10              # writes runs/lenet5-digits (or -2, -3 ...)
    deepgrad train --resume runs/lenet5-digits                   # continue an interrupted run exactly
    deepgrad train vgg11_bn --data digits --pretrained vgg11_bn_digits --freeze features
    deepgrad gan --data ring --steps 2000 --out runs/ring
    deepgrad gan --data digits --steps 1500 --image-size 16 --out runs/dcgan

``train`` writes ``run.json`` (its settings), ``history.csv``, ``history.png``, the best full checkpoint
``best.ckpt`` (by validation loss), ``last.ckpt`` (every epoch, what ``--resume`` continues from) and the
weights ``model.safetensors`` (loadable with ``deepgrad.models.load_model(path)``). ``gan`` writes sample
PNGs under ``samples/``, ``losses.png``, ``metrics.json`` and ``generator.safetensors``. A run never
overwrites an earlier one unless asked (``--overwrite``). User errors raise
:class:`~deepgrad.cli_common.CommandError`. Heavy imports happen inside the handlers, so building the
parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .cli_common import CommandError, check_number, claim_run_dir, handles_errors, read_json_config

TRAIN_MODELS = ("mlp", "lenet5", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
                "resnet18", "resnet34", "resnet8", "resnet20", "transformer", "transformer_lm")
TRAIN_DATA = ("digits", "digits28", "mnist", "fashion-mnist", "spirals", "xor", "blobs", "recall", "zen", "pydoc")
GAN_DATA = ("ring", "digits")


# ----------------------------------------------------------------------------- train
def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``deepgrad train MODEL --data DATASET ...`` on an ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "train", help="train a model-zoo network on a dataset",
        description="Train a model-zoo network with a progress bar, a history plot and the best checkpoint. "
                    "Image models on 'digits' use the 8x8 images (LeNet-5 the 28x28 view). Each run writes to "
                    "a new directory (runs/MODEL-DATASET, else runs/MODEL-DATASET-2, ...); an interrupted run "
                    "continues exactly with --resume DIR.")
    p.add_argument("model", nargs="?", choices=TRAIN_MODELS, metavar="MODEL",
                   help=f"one of: {', '.join(TRAIN_MODELS)} (not needed with --resume)")
    p.add_argument("--data", default="digits", choices=TRAIN_DATA, metavar="DATASET",
                   help=f"one of: {', '.join(TRAIN_DATA)} (default: digits; mnist/fashion-mnist read IDX files "
                        f"from --data-dir)")
    p.add_argument("--data-dir", default="data", help="directory holding MNIST/Fashion-MNIST IDX files")
    p.add_argument("--epochs", type=int, default=10, help="epochs, >= 1 (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per batch, >= 1 (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate, > 0 (default 1e-3)")
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--width", type=float, default=None,
                   help="channel multiplier (VGG, default 1/8 on small images) or base width (ResNet, default 16)")
    p.add_argument("--pretrained", default=None, metavar="NAME_OR_PATH",
                   help="start from shipped weights (see deepgrad.models.list_pretrained()) or a safetensors file; "
                        "tensors that do not fit (e.g. a head for another class count) are reported and skipped")
    p.add_argument("--freeze", default=None, metavar="MODULE",
                   help="freeze every layer up to and including this module (e.g. 'features', 'layer2')")
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping patience in epochs, >= 0 (default: off)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training samples (quick runs)")
    p.add_argument("--out", default=None,
                   help="output directory (default: runs/MODEL-DATASET, or the next free runs/MODEL-DATASET-N)")
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it holds an earlier run")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR from its last checkpoint (last.ckpt), with its saved settings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.set_defaults(handler=run_train)
    return p


def _image_arrays(data: str, size: int, data_dir: str, seed: int):
    import numpy as np

    if data in ("digits", "digits28"):
        from .data.datasets import load_digits

        train, test = load_digits(size=size, test_size=0.2, seed=seed)
        return (train.tensors[0].numpy(), train.tensors[1].numpy(), test.tensors[0].numpy(),
                test.tensors[1].numpy())
    from .data.datasets import MNIST, FashionMNIST

    cls = MNIST if data == "mnist" else FashionMNIST
    tr, te = cls(data_dir, train=True), cls(data_dir, train=False)
    xtr = tr.data.astype(np.float32)[:, None] / np.float32(255.0)
    mean, std = float(xtr.mean()), float(xtr.std())
    norm = lambda a: ((a.astype(np.float32)[:, None] / np.float32(255.0) - mean) / std).astype(np.float32)  # noqa: E731
    return norm(tr.data), tr.targets, norm(te.data), te.targets


def _points(data: str, seed: int):
    import numpy as np

    from .data.datasets import make_gaussian_mixture, make_spirals, make_xor, stratified_split

    ds = {"spirals": lambda: make_spirals(1000, seed=seed), "xor": lambda: make_xor(1000, seed=seed),
          "blobs": lambda: make_gaussian_mixture(1000, centers=4, seed=seed)}[data]()
    x, y = ds.tensors[0].numpy(), ds.tensors[1].numpy()
    tr, te = stratified_split(y, 0.2, seed)
    return x[tr], y[tr], x[te], np.ascontiguousarray(y[te])


def _model_config(name: str, shape: tuple, classes: int, width: float | None) -> tuple[str, dict]:
    """(architecture, config) for ``name`` on inputs of ``shape`` (without the batch dim)."""
    import math

    if name == "mlp":
        return "mlp", {"in_features": int(math.prod(shape)), "hidden_features": [128, 64], "out_features": classes,
                       "dropout": 0.1}
    if len(shape) != 3:
        raise ValueError(f"model {name!r} needs images; this dataset gives {len(shape)}-D samples (use mlp)")
    channels, side = shape[0], shape[1]
    if name == "lenet5":
        return "lenet5", {"num_classes": classes, "in_channels": channels, "input_size": side}
    if name.startswith("vgg"):
        small = side <= 32
        w = width if width is not None else (0.125 if small else 1.0)
        cfg = {"num_classes": classes, "in_channels": channels, "input_size": side, "width": w}
        if small:
            cfg.update(hidden=64, dropout=0.3)
        return name, cfg
    base = int(width) if width is not None else 16
    if name in ("resnet8", "resnet20"):
        return "resnet_cifar", {"depth": int(name[6:]), "num_classes": classes, "in_channels": channels, "width": base}
    return name, {"num_classes": classes, "in_channels": channels, "width": base}


RUN_FORMAT = "deepgrad.run/1"
# The settings a run saves in run.json (and --resume rebuilds it from): name -> accepted JSON types
TRAIN_SETTINGS = {"model": (str,), "data": (str,), "data_dir": (str,), "epochs": (int,), "batch_size": (int,),
                  "lr": (int, float), "optimizer": (str,), "width": (int, float, type(None)),
                  "pretrained": (str, type(None)), "freeze": (str, type(None)), "patience": (int, type(None)),
                  "limit": (int, type(None)), "seed": (int,)}


def _check_train_settings(args: argparse.Namespace, resuming: bool = False) -> None:
    """Refuse values that cannot train (zero and negative values are checked, never replaced by defaults)."""
    if args.model not in TRAIN_MODELS:
        raise CommandError(f"unknown model {args.model!r}: give one of {', '.join(TRAIN_MODELS)}")
    if args.data not in TRAIN_DATA:
        raise CommandError(f"unknown dataset {args.data!r}: give --data one of {', '.join(TRAIN_DATA)}")
    if args.optimizer not in ("adam", "adamw", "sgd"):
        raise CommandError(f"unknown optimizer {args.optimizer!r}: give --optimizer adam, adamw or sgd")
    check_number("--epochs", args.epochs, minimum=1, example="10")
    check_number("--batch-size", args.batch_size, minimum=1, example="64")
    check_number("--lr", args.lr, above=0, example="1e-3")
    check_number("--width", args.width, above=0, example="16")
    check_number("--patience", args.patience, minimum=0, example="3")
    check_number("--limit", args.limit, minimum=1, example="500")
    check_number("--seed", args.seed, minimum=0, example="0")
    if args.pretrained is not None and not resuming:  # a resumed run takes its weights from last.ckpt
        from .models.pretrained import PRETRAINED, list_pretrained

        if args.pretrained not in PRETRAINED and not os.path.isfile(args.pretrained):
            raise CommandError(f"--pretrained {args.pretrained!r} is neither shipped weights nor a file: give one of "
                               f"{', '.join(list_pretrained())}, or the path of a safetensors file")


def _resume_settings(args: argparse.Namespace) -> argparse.Namespace:
    """The settings saved in ``args.resume``/run.json, after checking the file and that no option given on this
    command line contradicts them."""
    run_dir = args.resume
    if not os.path.isdir(run_dir):
        raise CommandError(f"--resume {run_dir}: no such run directory; give the directory a train run wrote")
    path = os.path.join(run_dir, "run.json")
    if not os.path.exists(path):
        raise CommandError(f"--resume {run_dir}: it has no run.json, so it was not written by deepgrad train; give "
                           f"the directory a train run wrote")
    saved = read_json_config(path, "run settings")
    settings = saved.get("settings")
    if saved.get("format") != RUN_FORMAT or not isinstance(settings, dict):
        raise CommandError(f"{path}: not a deepgrad train run file (expected format {RUN_FORMAT!r} with a "
                           f"'settings' object)", 1)
    for name, kinds in TRAIN_SETTINGS.items():
        if name not in settings:
            raise CommandError(f"{path}: the setting {name!r} is missing", 1)
        value = settings[name]
        if not isinstance(value, kinds) or isinstance(value, bool):
            expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise CommandError(f"{path}: the setting {name!r} is {value!r}, expected {expected}; fix the file or "
                               f"start a new run", 1)
    defaults = vars(add_train_parser(argparse.ArgumentParser().add_subparsers()).parse_args([]))
    for name in TRAIN_SETTINGS:
        given = getattr(args, name)
        if name == "data_dir":  # where the data lives may change; the data may not
            continue
        if given != defaults[name] and given != settings[name]:
            option = name if name == "model" else "--" + name.replace("_", "-")
            raise CommandError(f"{option} cannot change when resuming: {run_dir} continues with the settings in "
                               f"{path} ({option} {settings[name]}); drop {option}, or start a new run")
    if args.out is not None or args.overwrite:
        raise CommandError(f"--resume writes into {run_dir} itself: drop --out/--overwrite")
    resumed = argparse.Namespace(**vars(args))
    for name, value in settings.items():
        if name in TRAIN_SETTINGS and not (name == "data_dir" and args.data_dir != defaults["data_dir"]):
            setattr(resumed, name, value)
    try:
        _check_train_settings(resumed, resuming=True)
    except CommandError as e:
        raise CommandError(f"{path}: {e}", 1) from None
    return resumed


def _write_run_file(out: str, args: argparse.Namespace) -> None:
    from . import __version__
    from .io import atomic_write_bytes

    record = {"format": RUN_FORMAT, "deepgrad": __version__,
              "settings": {name: getattr(args, name) for name in TRAIN_SETTINGS}}
    atomic_write_bytes(os.path.join(out, "run.json"), (json.dumps(record, indent=1) + "\n").encode())


def _finished(checkpoint: str, epochs: int) -> tuple[int, bool]:
    """(epochs done, whether the run is over) from a run's last checkpoint, early stopping included."""
    from .train import load_checkpoint

    state = load_checkpoint(checkpoint)
    try:
        done = int(state["trainer"]["epoch"])
        stopped = any(k.startswith("EarlyStopping") and isinstance(v, dict) and v.get("stopped_epoch") is not None
                      for k, v in state["callbacks"].items())
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        from .train import CheckpointError

        raise CheckpointError(f"{checkpoint!r} is not a checkpoint of a deepgrad train run ({e})") from None
    return done, stopped or done >= epochs


@handles_errors("train", "--out")
def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Handler of ``deepgrad train``; returns the exit status."""
    if args.resume is not None:
        args = _resume_settings(args)
        checkpoint = os.path.join(args.resume, "last.ckpt")
        if not os.path.exists(checkpoint):
            raise CommandError(f"--resume {args.resume}: it has no last.ckpt (the run stopped before its first "
                               f"epoch ended): start the run again with the same options and --out {args.resume} "
                               f"--overwrite")
        done, over = _finished(checkpoint, args.epochs)
    elif args.model is None:
        raise CommandError(f"give a MODEL ({', '.join(TRAIN_MODELS)}) or --resume DIR")
    else:
        _check_train_settings(args)
    import numpy as np

    from . import creation, nn, optim
    from .data import DataLoader, TensorDataset
    from .models.pretrained import PRETRAINED, build_model, save_model
    from .train import CSVLogger, EarlyStopping, ModelCheckpoint, Trainer, plot_history
    from .transfer import PretrainedLoadError, freeze, keep_frozen_bn_eval, load_pretrained

    creation.manual_seed(args.seed)
    size = 28 if args.data != "digits" or args.model == "lenet5" else 8
    loss_fn, metric = nn.CrossEntropyLoss(), "accuracy"
    try:
        if args.model.startswith("transformer") or args.data in ("recall", "zen", "pydoc"):  # token sequences
            from .models.transformer_training import sequence_task

            task = sequence_task(args.model, args.data, args.seed)
            xtr, ytr, xte, yte, arch, config = task.x_train, task.y_train, task.x_test, task.y_test, task.arch, \
                task.config
            loss_fn, metric = task.loss, task.metric
        elif args.data in ("spirals", "xor", "blobs"):
            xtr, ytr, xte, yte = _points(args.data, args.seed)
        else:
            xtr, ytr, xte, yte = _image_arrays(args.data, size, args.data_dir, args.seed)
        if args.limit is not None:
            xtr, ytr = xtr[:args.limit], ytr[:args.limit]
        if not args.model.startswith("transformer"):
            classes = int(max(ytr.max(), yte.max())) + 1
            arch, config = _model_config(args.model, tuple(xtr.shape[1:]), classes, args.width)
        model = build_model(arch, **config)
    except (ValueError, FileNotFoundError) as e:
        raise CommandError(str(e)) from None
    if args.pretrained and args.resume is None:  # resumed: the weights come from last.ckpt
        source = PRETRAINED[args.pretrained].path if args.pretrained in PRETRAINED else args.pretrained
        try:
            report = load_pretrained(model, source)
        except PretrainedLoadError as e:
            raise CommandError(f"--pretrained {args.pretrained}: {e}") from None
        print(report)
    if args.freeze:
        try:
            frozen = freeze(model, up_to=args.freeze)
        except ValueError as e:
            raise CommandError(f"--freeze {args.freeze}: {e}") from None
        keep_frozen_bn_eval(model)  # frozen batch norm keeps its pretrained running statistics
        print(f"froze {len(frozen)} parameter tensors up to {args.freeze!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise CommandError(f"--freeze {args.freeze} freezes every parameter, so nothing would train: freeze an "
                           f"earlier module")
    if args.resume is not None:
        out = args.resume
        print(f"resuming {out} after epoch {done} of {args.epochs}" + (" (the run had finished: rewriting its "
                                                                         "outputs)" if over else ""))
    else:
        out, note = claim_run_dir(args.out, os.path.join("runs", f"{args.model}-{args.data}"), args.overwrite,
                                  "train")
        print(f"writing the run to {out}" + (f" ({note})" if note else ""))
        _write_run_file(out, args)
    opt = {"adam": lambda: optim.Adam(params, lr=args.lr), "adamw": lambda: optim.AdamW(params, lr=args.lr),
           "sgd": lambda: optim.SGD(params, lr=args.lr, momentum=0.9)}[args.optimizer]()
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    # EarlyStopping also hands back the best epoch's weights at the end (without --patience it never stops)
    patience = args.patience if args.patience is not None else args.epochs + 1
    callbacks = [ModelCheckpoint(out, filename="best", monitor="val_loss", save_best_only=True, save_last=True),
                 CSVLogger(os.path.join(out, "history.csv")),
                 EarlyStopping("val_loss", patience=patience, restore_best_weights=True)]
    train_loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True, generator=args.seed)
    val_loader = DataLoader(TensorDataset(xte, yte), batch_size=256)
    trainer = Trainer(model, loss_fn, opt, sched, metrics=[metric], callbacks=callbacks,
                      progress=not args.no_progress)
    try:
        if args.resume is not None:  # an early-stopped run is over: restore it without training further
            history = trainer.fit(train_loader, val_loader, epochs=done if over else args.epochs,
                                  resume_from=checkpoint)
        else:
            history = trainer.fit(train_loader, val_loader, epochs=args.epochs)
    except KeyboardInterrupt:
        last = os.path.join(out, "last.ckpt")
        if os.path.exists(last):
            raise CommandError(f"interrupted; {last} holds the last finished epoch: continue the run with "
                               f"deepgrad train --resume {out}", 130) from None
        raise CommandError(f"interrupted before the first epoch ended; {out} holds no checkpoint", 130) from None
    if args.no_progress and trainer.stop_reason:
        print(trainer.stop_reason)
    best = os.path.join(out, "best.ckpt")
    result = trainer.evaluate(val_loader)
    weights = save_model(model.eval(), os.path.join(out, "model.safetensors"), arch, config,
                         {"deepgrad.data": args.data, "deepgrad.val_accuracy": f"{result['accuracy']:.4f}"})
    plot = plot_history(history, os.path.join(out, "history.png"), title=f"{args.model} on {args.data}")
    best_epoch, _ = history.best("val_loss")
    print(f"{args.model} on {args.data}: best validation loss {result['loss']:.4f} (epoch {best_epoch} of "
          f"{len(history)}), accuracy {100 * result['accuracy']:.2f}% ({len(yte)} held-out samples, "
          f"{int(np.sum([p.numel() for p in params]))} trained parameters)")
    print(f"wrote {best}, {weights}, {plot}, {os.path.join(out, 'history.csv')}, {os.path.join(out, 'last.ckpt')}")
    return 0


# ----------------------------------------------------------------------------- gan
def add_gan_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``deepgrad gan --data ring|digits ...`` on an ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "gan", help="train a GAN (2-D ring of Gaussians or DCGAN on digits)",
        description="Train a GAN: an MLP GAN on an 8-mode ring of Gaussians (reports mode coverage and a "
                    "sliced Wasserstein distance) or a DCGAN on scikit-learn's digits (writes sample grids). "
                    "Each run writes to a new directory (runs/gan-DATA, else runs/gan-DATA-2, ...).")
    p.add_argument("--data", default="ring", choices=GAN_DATA)
    p.add_argument("--steps", type=int, default=None, help="generator steps, >= 1 (default: 2000 ring, 1500 digits)")
    p.add_argument("--batch-size", type=int, default=None, help=">= 1 (default: 256 ring, 64 digits)")
    p.add_argument("--loss", default="non_saturating", choices=("non_saturating", "minimax", "least_squares"))
    p.add_argument("--n-critic", type=int, default=1, help="discriminator steps per generator step, >= 1")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="one-sided: real target 1 - s, 0 <= s < 1")
    p.add_argument("--lr", type=float, default=None,
                   help="generator learning rate, > 0 (default: 1e-3 ring, 2e-4 digits)")
    p.add_argument("--d-lr", type=float, default=None,
                   help="discriminator learning rate, > 0 (default: 4e-3 ring, = lr digits)")
    p.add_argument("--pack", type=int, default=None, help="PacGAN packing, >= 1 (default: 2 ring, 1 digits)")
    p.add_argument("--instance-noise", type=float, default=None,
                   help="annealed noise std, >= 0 (default: 0.3 ring, 0 digits)")
    p.add_argument("--image-size", type=int, default=16, choices=(8, 16, 32),
                   help="DCGAN image size for digits: 8, 16 or 32 (default 16)")
    p.add_argument("--sample-every", type=int, default=500,
                   help="write samples/stepN.png every N steps (0: none; samples.png is written at the end "
                        "either way; default 500)")
    p.add_argument("--out", default=None, help="output directory (default: runs/gan-DATA, or the next free "
                                               "runs/gan-DATA-N)")
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it holds an earlier run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_gan)
    return p


def _check_gan_settings(args: argparse.Namespace) -> None:
    """Every value is checked as given: 0 is rejected or honoured, never taken for "use the default"."""
    check_number("--steps", args.steps, minimum=1, example="2000")
    check_number("--batch-size", args.batch_size, minimum=1, example="64")
    check_number("--n-critic", args.n_critic, minimum=1, example="1")
    check_number("--lr", args.lr, above=0, example="2e-4")
    check_number("--d-lr", args.d_lr, above=0, example="4e-3")
    check_number("--pack", args.pack, minimum=1, example="2")
    check_number("--instance-noise", args.instance_noise, minimum=0, example="0.3")
    check_number("--sample-every", args.sample_every, minimum=0, example="500")
    check_number("--seed", args.seed, minimum=0, example="0")
    if not 0 <= args.label_smoothing < 1:
        raise CommandError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing:g}: e.g. 0.1")
    if args.image_size not in (8, 16, 32):
        raise CommandError(f"--image-size must be 8, 16 or 32, got {args.image_size}")


def _default(value, default):
    return default if value is None else value


@handles_errors("gan", "--out")
def run_gan(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Handler of ``deepgrad gan``; returns the exit status."""
    from . import gan
    from .io import atomic_write_bytes
    from .models.pretrained import save_model

    _check_gan_settings(args)
    ring = args.data == "ring"
    steps = _default(args.steps, 2000 if ring else 1500)
    batch = _default(args.batch_size, 256 if ring else 64)
    lr = _default(args.lr, 1e-3 if ring else 2e-4)
    out, note = claim_run_dir(args.out, os.path.join("runs", f"gan-{args.data}"), args.overwrite, "gan")
    print(f"writing the run to {out}" + (f" ({note})" if note else ""))
    options = {"loss": args.loss, "n_critic": args.n_critic, "label_smoothing": args.label_smoothing}
    live = not args.no_progress and sys.stderr.isatty()
    every = max(1, steps // 10)

    def report(step: int, logs: dict) -> None:  # off a terminal: a plain line every tenth of the run
        if step % every == 0 or step == steps:
            print(f"step {step}/{steps}  " + "  ".join(f"{k} {v:.4g}" for k, v in logs.items()), file=sys.stderr)

    try:
        if ring:
            data = gan.make_ring(2000, std=0.05, seed=args.seed)
            trainer = gan.ring_trainer(args.seed, pack=_default(args.pack, 2), lr=lr, d_lr=_default(args.d_lr, 4e-3),
                                       instance_noise=_default(args.instance_noise, 0.3), **options)
            arch, config = "mlp_generator", {"latent_dim": 8, "hidden": 128}
        else:
            data = gan.digit_images(args.image_size)
            config = {"latent_dim": 32, "channels": 1, "image_size": args.image_size, "base_width": 32}
            arch = "dcgan_generator"
            trainer = gan.dcgan_trainer(seed=args.seed, pack=_default(args.pack, 1), lr=lr, d_lr=args.d_lr,
                                        instance_noise=_default(args.instance_noise, 0.0), **config, **options)
        history = trainer.fit(data, steps=steps, batch_size=batch, sample_every=args.sample_every,
                              sample_dir=os.path.join(out, "samples"), progress=live,
                              callback=report if not (live or args.no_progress) else None,
                              lr_end_factor=0.1 if ring else None)
    except ValueError as e:
        raise CommandError(str(e)) from None
    except FloatingPointError as e:
        raise CommandError(f"{e}; try a lower --lr/--d-lr", 1) from None
    except KeyboardInterrupt:
        raise CommandError(f"interrupted; {out} holds the samples written so far (a GAN run cannot be resumed: "
                           f"start it again)", 130) from None
    metrics = {"steps": steps, "final_d_loss": history["d_loss"][-1], "final_g_loss": history["g_loss"][-1]}
    if ring:
        samples = trainer.sample(2000)
        cov = gan.mode_coverage(samples, gan.ring_centers(), std=0.05)
        metrics.update(modes_covered=cov.covered, modes=cov.modes, high_quality=cov.high_quality,
                       per_mode=cov.counts.tolist(), sliced_wasserstein=gan.sliced_wasserstein(samples, data))
        gan.save_scatter(samples, os.path.join(out, "samples.png"), real=data, centers=gan.ring_centers(),
                         title=f"{cov.covered}/{cov.modes} modes covered")
        print(f"ring: {cov}; sliced Wasserstein distance {metrics['sliced_wasserstein']:.3f}")
    else:
        gan.save_image_grid(trainer.sample(z=trainer.fixed_z), os.path.join(out, "samples.png"))
    gan.plot_losses(history, os.path.join(out, "losses.png"))
    atomic_write_bytes(os.path.join(out, "metrics.json"), (json.dumps(metrics, indent=2) + "\n").encode())
    save_model(trainer.generator, os.path.join(out, "generator.safetensors"), arch, config)
    print(f"wrote {out}/samples.png, {out}/losses.png, {out}/metrics.json, {out}/generator.safetensors")
    return 0
