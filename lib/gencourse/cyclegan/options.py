"""Command-line options of `gencourse train cyclegan` (no framework imported here)."""

from __future__ import annotations


def add_train_arguments(p) -> None:
    from ..arguments import add_common_run_options, positive

    add_common_run_options(p)
    p.add_argument("--dataset", default="digits", metavar="digits|folder:PATH|kaggle:PATH",
                   help="digits: scikit-learn's digits <-> MNIST, offline (default); "
                        "folder:PATH: trainA/ trainB/ testA/ testB/; "
                        "kaggle:PATH: monet_tfrec/ photo_tfrec/ (or monet_jpg/ photo_jpg/)")
    p.add_argument("--data-dir", help="MNIST folder for --dataset digits (or GENCOURSE_DATA)")
    p.add_argument("--image-size", type=positive, help="default: 28 (digits), 256 (images)")
    p.add_argument("--generator", choices=["resnet", "unet"], default="resnet")
    p.add_argument("--n-blocks", type=positive, help="residual blocks (default 9 at >= 256, else 6)")
    p.add_argument("--ngf", type=positive, help="generator width (default 64; 16 for digits)")
    p.add_argument("--ndf", type=positive, help="discriminator width (default 64; 16 for digits)")
    p.add_argument("--d-layers", type=positive,
                   help="stride-2 layers of the PatchGAN (3: 70x70, the default for images; 2: 34x34 for digits)")
    p.add_argument("--gan-mode", choices=["lsgan", "bce"], default="lsgan")
    p.add_argument("--epochs", type=positive, help="epochs at the constant rate (default: see README)")
    p.add_argument("--decay-epochs", type=int, help="epochs of linear decay to zero")
    p.add_argument("--steps-per-epoch", type=positive,
                   help="iterations per epoch (default: the larger domain over the batch size)")
    p.add_argument("--batch-size", type=positive, help="default 1 (images), 16 (digits)")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--lambda-cycle", type=float, default=10.0)
    p.add_argument("--lambda-identity", type=float, default=0.5)
    p.add_argument("--pool-size", type=int, default=50)
    p.add_argument("--eval-images", type=positive, default=300,
                   help="held-out images per domain for the cycle error and label preservation (default 300)")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from .run import train_from_args

    return train_from_args(args)
