"""The ``deepgrad train`` and ``deepgrad gan`` subcommands (wired into :mod:`deepgrad.cli`).

    deepgrad train lenet5 --data digits --epochs 10 --out runs/lenet
    deepgrad train vgg11_bn --data digits --pretrained vgg11_bn_digits --freeze features
    deepgrad gan --data ring --steps 2000 --out runs/ring
    deepgrad gan --data digits --steps 1500 --image-size 16 --out runs/dcgan

``train`` writes ``history.csv``, ``history.png``, the best full checkpoint ``best.ckpt`` (by validation
loss) and its weights ``model.safetensors`` (loadable with ``deepgrad.models.load_model(path)``).
``gan`` writes sample PNGs under ``samples/``, ``losses.png``, ``metrics.json`` and ``generator.safetensors``.
Heavy imports happen inside the handlers, so building the parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

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
                    "Image models on 'digits' use the 8x8 images (LeNet-5 the 28x28 view).")
    p.add_argument("model", choices=TRAIN_MODELS, metavar="MODEL", help=f"one of: {', '.join(TRAIN_MODELS)}")
    p.add_argument("--data", default="digits", choices=TRAIN_DATA, metavar="DATASET",
                   help=f"one of: {', '.join(TRAIN_DATA)} (default: digits; mnist/fashion-mnist read IDX files "
                        f"from --data-dir)")
    p.add_argument("--data-dir", default="data", help="directory holding MNIST/Fashion-MNIST IDX files")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--width", type=float, default=None,
                   help="channel multiplier (VGG, default 1/8 on small images) or base width (ResNet, default 16)")
    p.add_argument("--pretrained", default=None, metavar="NAME_OR_PATH",
                   help="start from shipped weights (see deepgrad.models.list_pretrained()) or a safetensors file; "
                        "tensors that do not fit (e.g. a head for another class count) are reported and skipped")
    p.add_argument("--freeze", default=None, metavar="MODULE",
                   help="freeze every layer up to and including this module (e.g. 'features', 'layer2')")
    p.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs (default: off)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training samples (quick runs)")
    p.add_argument("--out", default=None, help="output directory (default: runs/MODEL-DATASET)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Handler of ``deepgrad train``; returns the exit status."""
    import numpy as np

    from . import creation, nn, optim
    from .data import DataLoader, TensorDataset
    from .models.pretrained import PRETRAINED, build_model, save_model
    from .train import CSVLogger, EarlyStopping, ModelCheckpoint, Trainer, plot_history
    from .transfer import PretrainedLoadError, freeze, keep_frozen_bn_eval, load_pretrained

    def fail(message: str) -> int:
        print(f"deepgrad train: {message}", file=sys.stderr)
        return 2

    if args.epochs < 1 or args.batch_size < 1:
        return fail("--epochs and --batch-size must be >= 1")
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
        if args.limit:
            xtr, ytr = xtr[:args.limit], ytr[:args.limit]
        if not args.model.startswith("transformer"):
            classes = int(max(ytr.max(), yte.max())) + 1
            arch, config = _model_config(args.model, tuple(xtr.shape[1:]), classes, args.width)
        model = build_model(arch, **config)
    except (ValueError, FileNotFoundError, OSError) as e:
        return fail(str(e))
    out = args.out or os.path.join("runs", f"{args.model}-{args.data}")
    os.makedirs(out, exist_ok=True)
    if args.pretrained:
        source = PRETRAINED[args.pretrained].path if args.pretrained in PRETRAINED else args.pretrained
        try:
            report = load_pretrained(model, source)
        except PretrainedLoadError as e:
            return fail(str(e))
        print(report)
    if args.freeze:
        try:
            frozen = freeze(model, up_to=args.freeze)
        except ValueError as e:
            return fail(str(e))
        keep_frozen_bn_eval(model)  # frozen batch norm keeps its pretrained running statistics
        print(f"froze {len(frozen)} parameter tensors up to {args.freeze!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return fail("every parameter is frozen; nothing to train")
    opt = {"adam": lambda: optim.Adam(params, lr=args.lr), "adamw": lambda: optim.AdamW(params, lr=args.lr),
           "sgd": lambda: optim.SGD(params, lr=args.lr, momentum=0.9)}[args.optimizer]()
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    # EarlyStopping also hands back the best epoch's weights at the end (without --patience it never stops)
    patience = args.patience if args.patience is not None else args.epochs + 1
    callbacks = [ModelCheckpoint(out, filename="best", monitor="val_loss", save_best_only=True, save_last=False),
                 CSVLogger(os.path.join(out, "history.csv")),
                 EarlyStopping("val_loss", patience=patience, restore_best_weights=True)]
    train_loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True, generator=args.seed)
    val_loader = DataLoader(TensorDataset(xte, yte), batch_size=256)
    trainer = Trainer(model, loss_fn, opt, sched, metrics=[metric], callbacks=callbacks,
                      progress=not args.no_progress)
    history = trainer.fit(train_loader, val_loader, epochs=args.epochs)
    best = os.path.join(out, "best.ckpt")
    result = trainer.evaluate(val_loader)
    weights = save_model(model.eval(), os.path.join(out, "model.safetensors"), arch, config,
                         {"deepgrad.data": args.data, "deepgrad.val_accuracy": f"{result['accuracy']:.4f}"})
    plot = plot_history(history, os.path.join(out, "history.png"), title=f"{args.model} on {args.data}")
    print(f"{args.model} on {args.data}: best validation loss {result['loss']:.4f}, accuracy "
          f"{100 * result['accuracy']:.2f}% ({len(yte)} held-out samples, {int(np.sum([p.numel() for p in params]))} "
          f"trained parameters)")
    print(f"wrote {best}, {weights}, {plot}, {os.path.join(out, 'history.csv')}")
    return 0


# ----------------------------------------------------------------------------- gan
def add_gan_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``deepgrad gan --data ring|digits ...`` on an ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "gan", help="train a GAN (2-D ring of Gaussians or DCGAN on digits)",
        description="Train a GAN: an MLP GAN on an 8-mode ring of Gaussians (reports mode coverage and a "
                    "sliced Wasserstein distance) or a DCGAN on scikit-learn's digits (writes sample grids).")
    p.add_argument("--data", default="ring", choices=GAN_DATA)
    p.add_argument("--steps", type=int, default=None, help="generator steps (default: 2000 ring, 1500 digits)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 256 ring, 64 digits")
    p.add_argument("--loss", default="non_saturating", choices=("non_saturating", "minimax", "least_squares"))
    p.add_argument("--n-critic", type=int, default=1, help="discriminator steps per generator step")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="one-sided: real target 1 - s")
    p.add_argument("--lr", type=float, default=None, help="generator learning rate (default: 1e-3 ring, 2e-4 digits)")
    p.add_argument("--d-lr", type=float, default=None, help="discriminator learning rate (default: 4e-3 ring, = lr)")
    p.add_argument("--pack", type=int, default=None, help="PacGAN packing (default: 2 ring, 1 digits)")
    p.add_argument("--instance-noise", type=float, default=None, help="annealed noise std (default: 0.3 ring, 0)")
    p.add_argument("--image-size", type=int, default=16, help="DCGAN image size for digits (8, 16 or 32)")
    p.add_argument("--sample-every", type=int, default=500, help="write samples every N steps")
    p.add_argument("--out", default=None, help="output directory (default: runs/gan-DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_gan)
    return p


def run_gan(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Handler of ``deepgrad gan``; returns the exit status."""
    from . import creation, gan
    from .models import DCGANDiscriminator, DCGANGenerator
    from .models.pretrained import save_model

    ring = args.data == "ring"
    steps = args.steps or (2000 if ring else 1500)
    batch = args.batch_size or (256 if ring else 64)
    lr = args.lr or (1e-3 if ring else 2e-4)
    if steps < 1 or batch < 1 or args.n_critic < 1:
        print("deepgrad gan: --steps, --batch-size and --n-critic must be >= 1", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", f"gan-{args.data}")
    os.makedirs(out, exist_ok=True)
    options = {"loss": args.loss, "n_critic": args.n_critic, "label_smoothing": args.label_smoothing}
    try:
        if ring:
            data = gan.make_ring(2000, std=0.05, seed=args.seed)
            trainer = gan.ring_trainer(args.seed, pack=args.pack or 2, lr=lr, d_lr=args.d_lr or 4e-3,
                                       instance_noise=0.3 if args.instance_noise is None else args.instance_noise,
                                       **options)
            arch, config = "mlp_generator", {"latent_dim": 8, "hidden": 128}
        else:
            data = gan.digit_images(args.image_size)
            creation.manual_seed(args.seed)
            config = {"latent_dim": 32, "channels": 1, "image_size": args.image_size, "base_width": 32}
            arch, pack = "dcgan_generator", args.pack or 1
            trainer = gan.GANTrainer(DCGANGenerator(**config), DCGANDiscriminator(pack, args.image_size, 32),
                                     lr=lr, d_lr=args.d_lr, pack=pack, seed=args.seed,
                                     instance_noise=args.instance_noise or 0.0, **options)
        history = trainer.fit(data, steps=steps, batch_size=batch, sample_every=args.sample_every,
                              sample_dir=os.path.join(out, "samples"), progress=not args.no_progress,
                              lr_end_factor=0.1 if ring else None)
    except (ValueError, FloatingPointError) as e:
        print(f"deepgrad gan: {e}", file=sys.stderr)
        return 2
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
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    save_model(trainer.generator, os.path.join(out, "generator.safetensors"), arch, config)
    print(f"wrote {out}/samples.png, {out}/losses.png, {out}/metrics.json, {out}/generator.safetensors")
    return 0
