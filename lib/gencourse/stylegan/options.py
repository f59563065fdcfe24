"""Command-line options of `gencourse train stylegan` and `gencourse experiment
stylegan-mixing` (no framework imported here, so the CLI stays fast)."""

from __future__ import annotations

import argparse


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def probabilities(text: str) -> list[float]:
    """Comma-separated probabilities, e.g. 0,0.5,0.9,1."""
    try:
        values = [probability(v) for v in text.split(",") if v.strip()]
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise argparse.ArgumentTypeError(f"must be comma-separated probabilities in [0, 1], "
                                         f"got {text!r}") from e
    if not values:
        raise argparse.ArgumentTypeError("needs at least one probability")
    return values


def prob_and_model(text: str) -> tuple[float, str]:
    """"P=RUN_DIR" or "P=shipped" -> (P, the folder or "shipped")."""
    prob, sep, model = text.partition("=")
    if not sep or not model:
        raise argparse.ArgumentTypeError(f"expected P=RUN_DIR or P=shipped, got {text!r}")
    return probability(prob), model


def parse_augment(text: str) -> str:
    from .augment import parse_policy

    try:
        parse_policy(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_model_arguments(p) -> None:
    """Options a training run and the mixing experiment share."""
    from ..arguments import positive

    p.add_argument("--data-dir", help="folder with MNIST idx files or mnist.npz (or GENCOURSE_DATA)")
    p.add_argument("--batch-size", type=positive, help="default 32")
    p.add_argument("--r1-gamma", type=non_negative, help="R1 weight gamma (default 10, the official FFHQ value)")
    p.add_argument("--learning-rate", type=float,
                   help="G's Adam rate (default 5e-4; the official code's base rate is 1e-3)")
    p.add_argument("--mapping-layers", type=positive,
                   help="layers of the mapping network (default 2 for the CPU run; the paper's 8)")
    p.add_argument("--d-learning-rate", type=float,
                   help="D's own Adam rate (TTUR, Heusel et al. 2017; default 2e-3)")
    p.add_argument("--r1-interval", type=positive,
                   help="lazy R1 (StyleGAN2): R1 on one minibatch in k, weighted k gamma (default 16; 1: every step)")
    p.add_argument("--augment", type=parse_augment,
                   help="DiffAugment policy for D's inputs, e.g. translation,cutout (default none)")
    p.add_argument("--fid-samples", type=positive,
                   help="generated digits scored (default 2000; 300 for a --quick experiment)")


def add_train_arguments(p) -> None:
    from ..arguments import add_common_run_options, positive

    add_common_run_options(p)
    add_model_arguments(p)
    p.add_argument("--epochs", type=positive, help="epochs, each a checkpoint (default 15)")
    p.add_argument("--steps-per-epoch", type=positive, help="training steps per epoch (default 200)")
    p.add_argument("--mixing-prob", type=probability, default=0.9,
                   help="style mixing regularization probability (default 0.9)")
    p.add_argument("--pretrained", action="store_true",
                   help="no training: score and draw the model shipped in the package "
                        "(gencourse/stylegan/pretrained, trained by the default torch run) in "
                        "--track's framework; writes every figure but the loss curves and "
                        "metrics.json to --out (default runs/stylegan-pretrained-TRACK)")
    p.add_argument("--compare", action="append", default=[], metavar="RUN_DIR",
                   help="a `gencourse train vae|cvae` output folder whose samples get the same "
                        "Frechet distance in metrics.json (repeatable)")
    p.set_defaults(func=train_cli)


def add_mixing_arguments(p) -> None:
    from ..arguments import add_threads_option, positive
    from ..devices import CHOICES

    p.add_argument("--track", choices=["tf", "torch"], default="torch",
                   help="TensorFlow/Keras or PyTorch (default torch)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the runs (default 0)")
    p.add_argument("--out", default="runs/stylegan-mixing", help="output folder")
    p.add_argument("--device", default="auto", choices=CHOICES, help="where to train (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_option(p)
    add_model_arguments(p)
    p.add_argument("--steps", type=positive, help="training steps per model (default 1500; 60 with --quick)")
    p.add_argument("--probs", type=probabilities, default=[0.0, 0.5, 0.9, 1.0],
                   help="comma-separated mixing probabilities to train with (default 0,0.5,0.9,1)")
    p.add_argument("--model", type=prob_and_model, action="append", default=[], metavar="P=RUN_DIR",
                   help="score a finished `gencourse train stylegan` folder (or `shipped`, the package's "
                        "generator, trained with 0.9) as the row for mixing probability P instead of "
                        "training it (repeatable)")
    p.add_argument("--quick", action="store_true", help="a few minutes: fewer steps and samples")
    p.set_defaults(func=mixing_cli)


def train_cli(args) -> int:
    from .run import train_from_args

    return train_from_args(args)


def mixing_cli(args) -> int:
    from .experiments import mixing_from_args

    return mixing_from_args(args)
