"""The `gencourse` command: train, demo, release, grade, check, gradescope."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .arguments import add_common_run_options, add_threads_option, apply_quick, positive
from .cyclegan.options import add_train_arguments as add_cyclegan
from .data import DataError
from .devices import DeviceError
from .stylegan.options import add_mixing_arguments
from .stylegan.options import add_train_arguments as add_stylegan


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a complete solution and write every figure of the report")
    models = p.add_subparsers(dest="model", required=True, metavar="MODEL")
    for model in ("vae", "cvae"):
        add_vae_train(models.add_parser(model, help=f"the report's {model.upper()} on MNIST"))
    add_cyclegan(models.add_parser("cyclegan", help="CycleGAN on digits<->MNIST or image folders"))
    add_stylegan(models.add_parser("stylegan", help="a small StyleGAN on MNIST"))


def add_vae_train(p) -> None:
    add_common_run_options(p)
    p.add_argument("--epochs", type=positive, help="default: 50 (vae) or 40 (cvae), as the report")
    p.add_argument("--latent-dim", type=positive, default=2, help="latent dimensions (default 2, as the report)")
    p.add_argument("--batch-size", type=positive, default=128, help="digits per step (default 128)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    p.add_argument("--data-dir", help="folder with MNIST idx files or mnist.npz (or GENCOURSE_DATA)")
    p.add_argument("--download", action="store_true",
                   help="download MNIST (md5-checked, cached) if it is not found locally")
    p.add_argument("--grey", action="store_true", help="train and score on grey levels (the report's setting; "
                   "the ELBO is then no bound on log p(x)); default: dynamically binarized digits")
    p.add_argument("--iwae-k", type=int, default=50, help="importance samples per held-out digit of the IWAE "
                   "bound (default 50; 0: none)")
    add_train_size(p)
    p.set_defaults(func=run_train)


def add_train_size(p) -> None:
    p.add_argument("--train-size", type=positive,
                   help="train on the first N training digits (default: all)")


def run_train(args) -> int:
    from .data import load_mnist
    from .devices import set_threads
    from .vae.run import train

    apply_quick(args, epochs=1, train_size=1000, iwae_k=min(args.iwae_k, 5))
    set_threads(args.track, args.threads)
    data = load_mnist(args.data_dir, download_ok=args.download)
    out = args.out or f"runs/{args.model}-{args.track}"
    m = train(args.model, args.track, epochs=args.epochs, latent_dim=args.latent_dim,
              batch_size=args.batch_size, seed=args.seed, learning_rate=args.learning_rate,
              data=data, out=out, device=args.device, resume=args.resume,
              progress=not args.no_progress, train_size=args.train_size, grey=args.grey, iwae_k=args.iwae_k)
    if m:
        iwae = (f"; -IWAE (k={m['iwae_k']}) {m['test_neg_iwae']:.1f} nats = {m['test_neg_iwae_bits_per_dim']:.3f} "
                f"bits/dim" if "test_neg_iwae" in m else "")
        print(f"{args.model}/{args.track}: held-out neg-ELBO {m['test_neg_elbo']:.1f} nats = "
              f"{m['test_neg_elbo_bits_per_dim']:.3f} bits/dim (recon {m['test_recon']:.1f}, KL {m['test_kl']:.2f})"
              f"{iwae}; {m['digits']} digits; figures in {out}/")
    return 0


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="short VAE + CVAE runs in both tracks on the embedded data")
    p.add_argument("--out", default="runs/demo", help="folder of the four runs (default runs/demo)")
    p.add_argument("--epochs", type=positive, default=8, help="epochs per run (default 8)")
    # batch 32: four times the steps of 128 in the same minutes; at 128, 8 epochs of the
    # embedded 4,000 digits leave the VAE's second latent dimension unused (neg-ELBO ~196 vs ~173)
    p.add_argument("--batch-size", type=positive, default=32, help="digits per step (default 32)")
    p.add_argument("--tracks", default="tf,torch", help="comma-separated tracks to run (default tf,torch)")
    add_threads_option(p)
    add_train_size(p)
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    from .data import load_mnist
    from .devices import set_threads
    from .vae.run import train

    apply_quick(args, epochs=1, train_size=1000)
    tracks = [t.strip() for t in args.tracks.split(",") if t.strip()]
    unknown = [t for t in tracks if t not in ("tf", "torch")]
    if unknown or not tracks:
        raise ValueError(f"--tracks {args.tracks!r}: each track must be tf or torch")
    data = load_mnist()
    rows = []
    for track in tracks:
        set_threads(track, args.threads)
        for model in ("vae", "cvae"):
            t0 = time.perf_counter()
            m = train(model, track, epochs=args.epochs, batch_size=args.batch_size, data=data,   # no IWAE: minutes
                      out=Path(args.out) / f"{model}-{track}", train_size=args.train_size, iwae_k=0)
            rows.append((model, track, m["test_neg_elbo"], m.get("generation_accuracy"),
                         time.perf_counter() - t0))
    print(f"\n{'model':6} {'track':6} {'neg-ELBO':>9} {'gen. acc.':>9} {'seconds':>8}")
    for model, track, elbo, acc, sec in rows:
        print(f"{model:6} {track:6} {elbo:9.1f} {'' if acc is None else f'{acc:.1%}':>9} {sec:8.1f}")
    print("\nfigures and metrics.json of each run:")
    for model, track, *_ in rows:
        folder = Path(args.out) / f"{model}-{track}"
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        print(f"  {folder}/: {', '.join(files)}")
    return 0


def add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="the report's studies, re-run small: tables and figures")
    exps = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    add_mixing_arguments(exps.add_parser(
        "stylegan-mixing", help="StyleGAN's Table 2: mixing regularization vs latents mixed at test time"))


def add_release(sub) -> None:
    p = sub.add_parser("release", help="generate assignments/ from solutions/ with nbgrader")
    p.add_argument("assignment", nargs="?", help="one assignment (default: all)")
    p.add_argument("--source", default="solutions", help="folder of the assignments' sources (default solutions)")
    p.add_argument("--release", default="assignments", help="folder the student notebooks go to (default assignments)")
    p.set_defaults(func=run_release)


def run_release(args) -> int:
    from .grading.release import ReleaseError, release

    try:
        written = release(source=args.source, release=args.release, assignment=args.assignment)
    except ReleaseError as e:            # nbgrader's failure, said in one line (its traceback is not the user's)
        print(f"gencourse release: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"released {len(written)} notebooks into {args.release}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gencourse", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train(sub)
    add_demo(sub)
    add_experiment(sub)
    add_release(sub)
    from .grading import cli, gradescope

    cli.add_commands(sub)
    gradescope.add_gradescope_command(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, DeviceError, ValueError, FileNotFoundError) as e:
        print(f"gencourse {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
