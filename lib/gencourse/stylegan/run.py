"""`gencourse train stylegan`: train the small StyleGAN on MNIST, checkpoint every epoch,
write the paper's figures and metrics.json.

Writes into the output folder: samples.png (100 digits, psi = 1), progress/epoch_NNN.png
(the same 64 latents after each epoch), noise.png (same w, six noise draws and the
per-pixel std across draws), style_mixing_{coarse,middle,fine}.png (figure 3),
truncation.png (figure 8's psi sweep), editing.png (rows of attribute edits, see
editing.py), loss_curves.png, and metrics.json: the Fréchet distance of 2,000
samples to the test digits in the package classifier's feature space, its floor
(as many real training digits against the same test digits), the noise measure,
the editing directions' effects, and per-epoch mean losses. An "epoch" is
`steps_per_epoch` batches drawn at random from the training digits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from ..progress import tqdm

from .. import plots
from ..data import load_mnist
from ..arguments import apply_quick
from ..devices import set_threads
from ..runs import RunState
from . import common, editing, sampling

# The CPU-sized default: 64-dim z and w, 64 feature maps at 4²-8², 32 at 16², 16 at 32²
# (fmap_base 512). The foundation's default (128, fmap_base 2048) costs ~20x the time per step.
# Two mapping layers, not the paper's eight: with eight (lr_mul 0.01) the w of different z
# start out close (mean cosine 0.65 against 0.32 with two) and barely move in a 1,000-step
# run, and the generator collapsed to one digit (measured: 94 % eights, Fréchet distance 184);
# with two it kept all ten classes. StyleGAN2-ADA's small-image (CIFAR-10) configuration
# also uses two (github.com/NVlabs/stylegan2-ada-pytorch, train.py cfg_specs "cifar": map=2).
# `--mapping-layers 8` trains the paper's network.
CPU_SIZE = dict(z_dim=64, w_dim=64, fmap_base=512, fmap_max=64, mapping_layers=2)
# The default run, chosen by measurement (torch, 2-core CPU, 3,000 steps; docs/results.md): R1 gamma 10
# (the official FFHQ value) applied lazily every 16 minibatches (StyleGAN2, Karras et al. 2020, sec. 3.1),
# Adam 5e-4 for G and 2e-3 for D (TTUR, Heusel et al. 2017), no augmentation: Fréchet distance 9.5 against
# a floor of 2.4, every digit 7-15 % of the samples. DiffAugment translation + cutout (Zhao et al. 2020)
# scored 23.9 at the same budget, with 2 % fours: at 3,000 steps D does not overfit the 4,000 digits yet.
DEFAULTS = dict(epochs=15, steps_per_epoch=200, batch_size=32, r1_gamma=10.0,
                learning_rate=5e-4, fid_samples=2000)
CONFIG_DEFAULTS = dict(r1_interval=16, d_learning_rate=2e-3)


def make_config(*, mixing_prob: float = common.MIXING_PROB, r1_gamma: float | None = None,
                learning_rate: float | None = None, batch_size: int | None = None,
                seed: int = 0, **size) -> common.StyleGANConfig:
    """The run's StyleGANConfig: CPU_SIZE, DEFAULTS and CONFIG_DEFAULTS unless given. Adam betas
    (0, 0.99) as the official training_loop.py; `size` may override any config field."""
    c = dict(CPU_SIZE, **CONFIG_DEFAULTS)
    c.update(size)
    return common.StyleGANConfig(
        mixing_prob=mixing_prob, seed=seed,
        r1_gamma=DEFAULTS["r1_gamma"] if r1_gamma is None else r1_gamma,
        learning_rate=learning_rate or DEFAULTS["learning_rate"],
        batch_size=batch_size or DEFAULTS["batch_size"], **c)


def fit(trainer, x_train: np.ndarray, *, epochs: int, steps_per_epoch: int, out: Path | None,
        resume: bool = False, progress: bool = True, label: str = "stylegan",
        on_epoch=None) -> list[dict]:
    """The training loop: per step a batch of digits and all latents from a numpy generator
    seeded (seed, step), so that a resumed run continues exactly. Checkpoints into
    out/checkpoint after each epoch when `out` is given; returns the per-step losses."""
    c = trainer.config
    history, start = [], 1
    run = RunState(out, {**c.to_dict(), "steps_per_epoch": steps_per_epoch}) if out is not None else None
    state = run.resume(trainer) if resume and run is not None else None
    if state is not None:
        history, start = state["history"], state["epoch"] + 1
    for epoch in range(start, epochs + 1):
        with tqdm(total=steps_per_epoch, desc=f"{label} epoch {epoch}/{epochs}", unit="step",
                  disable=not (progress and trainer.is_main), leave=False) as bar:
            for i in range(steps_per_epoch):
                step = (epoch - 1) * steps_per_epoch + i + 1
                rng = np.random.default_rng([c.seed, step])
                batch = x_train[rng.choice(len(x_train), c.batch_size, replace=False)]
                history.append({"step": step, **trainer.train_step(batch, rng, step)})
                bar.update()
        if on_epoch is not None:
            on_epoch(epoch)
        if run is not None and trainer.is_main:
            run.save(trainer, epoch, history)
    return history


def epoch_means(history: list[dict], steps_per_epoch: int) -> list[dict]:
    keys = ("g_loss", "d_loss", "r1")
    return [{"epoch": e + 1, **{k: float(np.mean([h[k] for h in history[e * steps_per_epoch:
                                                                        (e + 1) * steps_per_epoch]]))
                                for k in keys}}
            for e in range(len(history) // steps_per_epoch)]


def to_unit(images: np.ndarray) -> np.ndarray:
    """Generator scale [-1, 1] -> [0, 1] for the figures."""
    return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)


def train(track: str = "torch", *, epochs: int | None = None, steps_per_epoch: int | None = None,
          batch_size: int | None = None, mixing_prob: float = common.MIXING_PROB,
          r1_gamma: float | None = None, learning_rate: float | None = None, seed: int = 0,
          fid_samples: int | None = None, data=None, data_dir=None, out="runs/stylegan",
          device: str = "auto", resume: bool = False, progress: bool = True, compare=(),
          classifier=None, **size) -> dict:
    """Train one track and write every figure; returns the metrics (also in metrics.json).
    `classifier`: a fitted DigitClassifier for the scores (default: one trained on `data`)."""
    epochs = epochs or DEFAULTS["epochs"]
    steps_per_epoch = steps_per_epoch or DEFAULTS["steps_per_epoch"]
    fid_samples = fid_samples or DEFAULTS["fid_samples"]
    out = Path(out)
    config = make_config(mixing_prob=mixing_prob, r1_gamma=r1_gamma, learning_rate=learning_rate,
                         batch_size=batch_size, seed=seed, **size)
    trainer = sampling.make_trainer(track, config, device)     # a missing device fails first
    data = data if data is not None else load_mnist(data_dir)
    x_train = sampling.to_model_images(data.x_train, config.resolution)
    fixed_z = sampling.latents(np.random.default_rng([seed, 0]), 64, config.z_dim)
    fixed_noise = sampling.noise(trainer, np.random.default_rng([seed, 0, 1]), 64)

    def snapshot(epoch):
        images = trainer.synthesize(sampling.broadcast(trainer.mapping(fixed_z), config.num_layers),
                                    fixed_noise)
        plots.image_grid(to_unit(images), out / "progress" / f"epoch_{epoch:03d}.png", 8, 8,
                         f"StyleGAN ({track}) after epoch {epoch}")

    started = time.perf_counter()
    history = fit(trainer, x_train, epochs=epochs, steps_per_epoch=steps_per_epoch, out=out,
                  resume=resume, progress=progress, label=f"stylegan/{track}", on_epoch=snapshot)
    seconds = time.perf_counter() - started
    if not trainer.is_main:
        return {}
    metrics = {"model": "stylegan", "track": track, "epochs": epochs,
               "steps_per_epoch": steps_per_epoch, "steps": len(history),
               "config": config.to_dict(), "data": data.source, "n_train": len(data.x_train),
               "n_test": len(data.x_test), "params": trainer.param_counts(),
               "train_seconds_this_session": seconds,
               "history": epoch_means(history, steps_per_epoch)}
    clf = classifier or classifier_for(data, seed)
    metrics.update(evaluate(trainer, data, clf, fid_samples, seed, compare, device))
    metrics.update(figures(trainer, history, out, f"StyleGAN ({track})", seed, clf,
                           edit_samples=max(100, fid_samples // 2)))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def sample_pretrained(track: str = "torch", *, seed: int = 0, fid_samples: int | None = None,
                      data=None, data_dir=None, out="runs/stylegan-pretrained",
                      device: str = "auto", compare=(), classifier=None) -> dict:
    """No training: the shipped Gs (stylegan/pretrained) scored and drawn as `train` does,
    every figure but the loss curves and the progress snapshots; returns the metrics."""
    from . import pretrained

    out = Path(out)
    sampler = pretrained.load(track, device)
    data = data if data is not None else load_mnist(data_dir)
    n = fid_samples or DEFAULTS["fid_samples"]
    metrics = {"model": "stylegan", "track": track, "pretrained": pretrained.metrics()["command"],
               "config": sampler.config.to_dict(), "data": data.source,
               "n_test": len(data.x_test)}
    clf = classifier or classifier_for(data, seed)
    metrics.update(evaluate(sampler, data, clf, n, seed, compare, device))
    metrics.update(figures(sampler, [], out, f"StyleGAN (shipped, {track})", seed, clf,
                           edit_samples=max(100, n // 2)))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def classifier_for(data, seed: int = 0):
    """The package's digit classifier, trained on (up to 10,000 of) the training digits."""
    from ..metrics import DigitClassifier

    return DigitClassifier(seed=seed).fit(data.x_train[:10000], data.y_train[:10000],
                                          data.x_test, data.y_test)


def evaluate(trainer, data, clf, n: int, seed: int, compare=(), device: str = "auto") -> dict:
    """Fréchet distances to the test digits (samples at psi 1 and 0.7, the floor), the share
    of each digit class among the samples, and optionally VAE/CVAE runs' samples."""
    scorer = sampling.FrechetScorer(clf, data.x_test)
    rng = np.random.default_rng([seed, 1])
    samples = sampling.generate(trainer, rng, n)
    real = data.x_train[rng.choice(len(data.x_train), min(n, len(data.x_train)), replace=False)]
    classes = np.bincount(clf.predict(sampling.to_digits(samples)), minlength=10) / n
    result = {"classifier_accuracy": clf.accuracy, "fid_samples": n,
              "frechet_distance": scorer.score(samples),
              "frechet_distance_psi_0.7": scorer.score(sampling.generate(trainer, rng, n, psi=0.7)),
              "frechet_floor": scorer.score(real.astype(np.float32) / 255.0),
              "class_fractions": classes.tolist()}
    if compare:
        from .compare import vae_frechet

        result["compare"] = {str(run): vae_frechet(run, scorer, n, seed, device) for run in compare}
    return result


def figures(trainer, history: list[dict], out: Path, title: str, seed: int, clf=None,
            edit_samples: int = 1000) -> dict:
    """The paper's figures for this model; returns the numbers measured on them."""
    rng = np.random.default_rng([seed, 2])
    plots.image_grid(to_unit(sampling.generate(trainer, rng, 100)), out / "samples.png", 10, 10,
                     f"{title}: samples, psi = 1")
    noisy = sampling.noise_images(trainer, rng)
    measure = sampling.noise_effect(noisy)
    std = noisy.std(axis=1)
    scale = 1.0 / max(float(std.max()), 1e-8)
    table = np.concatenate([to_unit(noisy), np.clip(std * scale, 0, 1)[:, None]], axis=1)
    plots.image_table(table, out / "noise.png", col_labels=[*range(1, noisy.shape[1] + 1),
                                                            f"std x{scale:.1f}"],
                      title=f"{title}: same w, different noise (std across noise = "
                            f"{measure['ratio']:.2f} x std across w)")
    for name, layers in sampling.STYLE_RANGES.items():
        plots.image_table(to_unit(sampling.style_mixing_table(trainer, rng, layers)),
                          out / f"style_mixing_{name}.png",
                          title=f"{title}: {name} styles (layers {layers[0]}-{layers[1] - 1}) "
                                f"from the top row")
    plots.image_table(to_unit(sampling.truncation_table(trainer, rng)), out / "truncation.png",
                      col_labels=[f"psi {p:g}" for p in sampling.TRUNCATION_PSIS],
                      title=f"{title}: truncation toward w_avg")
    if history:
        plots.gan_loss_curves(history, out / "loss_curves.png", title)
    edits = editing.edit_figure(trainer, out / "editing.png", seed, title, clf, n=edit_samples)
    return {"noise": measure, "editing": edits}


def model_options(args) -> dict:
    """The config options given on the command line (the others keep make_config's defaults)."""
    return {k: getattr(args, k) for k in ("mapping_layers", "r1_interval", "augment", "d_learning_rate")
            if getattr(args, k) is not None}


def train_from_args(args) -> int:
    apply_quick(args, epochs=1, steps_per_epoch=2, fid_samples=200)
    set_threads(args.track, args.threads)
    if args.pretrained:
        out = args.out or f"runs/stylegan-pretrained-{args.track}"
        m = sample_pretrained(args.track, seed=args.seed, fid_samples=args.fid_samples,
                              data_dir=args.data_dir, out=out, device=args.device,
                              compare=args.compare)
    else:
        out = args.out or f"runs/stylegan-{args.track}"
        m = train(args.track, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                  batch_size=args.batch_size, mixing_prob=args.mixing_prob, r1_gamma=args.r1_gamma,
                  learning_rate=args.learning_rate, seed=args.seed, fid_samples=args.fid_samples,
                  data_dir=args.data_dir, out=out, device=args.device, resume=args.resume,
                  progress=not args.no_progress, compare=args.compare, **model_options(args))
    if m:
        print(f"stylegan/{args.track}: Frechet distance {m['frechet_distance']:.2f} "
              f"(psi 0.7: {m['frechet_distance_psi_0.7']:.2f}; floor, real train vs test: "
              f"{m['frechet_floor']:.2f}); noise/style std {m['noise']['ratio']:.3f}; "
              f"figures in {out}/")
    return 0
