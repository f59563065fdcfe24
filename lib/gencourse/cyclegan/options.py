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
    p.add_argument("--generator", choices=["resnet", "unet"], default="resnet",
                   help="ResNet generator (the paper's) or a U-Net (default resnet)")
    p.add_argument("--n-blocks", type=positive, help="residual blocks (default 9 at >= 256, else 6)")
    p.add_argument("--ngf", type=positive, help="generator width (default 64; 16 for digits)")
    p.add_argument("--ndf", type=positive, help="discriminator width (default 64; 16 for digits)")
    p.add_argument("--d-layers", type=positive,
                   help="stride-2 layers of the PatchGAN (3: 70x70, the default for images; 2: 34x34 for digits)")
    p.add_argument("--gan-mode", choices=["lsgan", "bce"], default="lsgan",
                   help="least-squares GAN loss (the paper's) or binary cross-entropy (default lsgan)")
    p.add_argument("--epochs", type=positive, help="epochs at the constant rate (default: see README)")
    p.add_argument("--decay-epochs", type=int, help="epochs of linear decay to zero")
    p.add_argument("--steps-per-epoch", type=positive,
                   help="iterations per epoch (default: the larger domain over the batch size)")
    p.add_argument("--batch-size", type=positive, help="default 1 (images), 16 (digits)")
    p.add_argument("--learning-rate", type=float, default=2e-4, help="Adam's learning rate (default 2e-4)")
    p.add_argument("--lambda-cycle", type=float, default=10.0, help="weight of the cycle loss (default 10)")
    p.add_argument("--lambda-identity", type=float, default=5.0,
                   help="weight of the identity loss, its own (default 5: the paper's 0.5 * lambda)")
    p.add_argument("--pool-size", type=int, default=50,
                   help="fakes kept in the discriminators' history pool (default 50)")
    p.add_argument("--semantic-weight", type=float, default=0.0,
                   help="weight of CyCADA's semantic-consistency loss (digits only; default 0: none)")
    p.add_argument("--semantic-mode", choices=["cycada", "oracle"], default="cycada",
                   help="cycada: one classifier trained on the source domain's labels only, its predictions "
                        "as labels (the default); oracle: each output domain's classifier against the true "
                        "labels of both domains (an upper bound, not unpaired translation)")
    p.add_argument("--semantic-source", choices=["A", "B"], default="B",
                   help="CyCADA's labelled source domain (default B, MNIST; A: the 8x8 digits)")
    p.add_argument("--eval-images", type=positive, default=300,
                   help="held-out images per domain for the cycle error and label preservation (default 300)")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from .run import train_from_args

    return train_from_args(args)
