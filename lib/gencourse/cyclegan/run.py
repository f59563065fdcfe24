"""`gencourse train cyclegan`: train one track, checkpoint every epoch, write the figures.

Writes into the output folder: translations.png (test x, G(x), F(G(x)) and y,
F(y), G(F(y))), loss_curves.png, and metrics.json: the per-epoch losses, the
cycle error (mean |F(G(x)) - x| and |G(F(y)) - y| on held-out images, in the
[-1, 1] pixel scale), and on the digits task the label preservation in both
directions with the accuracies of the classifiers that judge it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ..progress import tqdm

from .. import plots
from ..data.domains import Domain, UnpairedDomains, cyclegan_folders, digits_domains
from ..data.kaggle import kaggle_monet
from ..runs import RunState
from .common import CycleGANConfig, lr_factor

# The digits task's default budget: 28x28 single-channel images, narrow networks
# (ngf = ndf = 16), a 34x34 PatchGAN (two stride-2 layers: the 70x70 one would see
# the whole 28x28 digit through a 1x1 map), batch 16.
DIGITS_DEFAULTS = dict(image_size=28, channels=1, ngf=16, ndf=16, d_layers=2, batch_size=16,
                       epochs=3, decay_epochs=3)
# Images: the paper's settings (batch 1, 100 + 100 epochs), at 256² unless told.
IMAGE_DEFAULTS = dict(image_size=256, channels=3, ngf=64, ndf=64, d_layers=3, batch_size=1,
                      epochs=100, decay_epochs=100)


@dataclass
class CycleData:
    """Train and held-out images of both domains (held-out may be the train domains)."""

    train_a: Domain
    train_b: Domain
    test_a: Domain
    test_b: Domain
    source: str
    digits: bool = False


def load_dataset(spec: str = "digits", data_dir=None, seed: int = 0) -> CycleData:
    """`digits`, `folder:PATH` (trainA/ trainB/ [testA/ testB/]) or `kaggle:PATH`."""
    kind, _, path = spec.partition(":")
    if kind == "digits" and not path:
        from ..data import load_mnist

        d = digits_domains(28, seed, mnist=load_mnist(data_dir, quiet=True))
        return CycleData(d.train_a, d.train_b, d.test_a, d.test_b, d.source, digits=True)
    if kind in ("folder", "kaggle") and not path:
        raise ValueError(f"--dataset {spec}: give the folder, as {kind}:PATH")
    path = str(Path(path).expanduser())       # the shell leaves a ~ after "folder:" alone
    if kind == "folder":
        a, b = cyclegan_folders(path, "train")
        has_test = all((Path(path) / f"test{s}").is_dir() for s in "AB")
        ta, tb = cyclegan_folders(path, "test") if has_test else (a, b)
        return CycleData(a, b, ta, tb, f"CycleGAN folders {path}" + ("" if has_test else " (no test split)"))
    if kind == "kaggle":
        a, b = kaggle_monet(path)
        return CycleData(a, b, a, b, f"Kaggle monet/photo {path} (no test split)")
    raise ValueError(f"--dataset must be digits, folder:PATH or kaggle:PATH, got {spec!r}")


def make_trainer(track: str, config: CycleGANConfig, device: str = "auto", parts: dict | None = None,
                 jit: bool | None = None):
    """The trainer of one framework; `parts` replace the package's losses or discriminator (the
    grader plugs a student's in); `jit=False` keeps the Keras steps out of XLA (no compile)."""
    if track == "torch":
        from .torch_track import TorchCycleGAN

        return TorchCycleGAN(config, device, parts)
    if track == "tf":
        from .tf_track import TFCycleGAN

        return TFCycleGAN(config, device, parts, **({} if jit is None else {"jit": jit}))
    raise ValueError(f"track must be 'tf' or 'torch', got {track!r}")


def train(track: str = "torch", *, dataset: str = "digits", data: CycleData | None = None,
          data_dir=None, out="runs/cyclegan", device: str = "auto", resume: bool = False,
          progress: bool = True, steps_per_epoch: int | None = None, parts: dict | None = None,
          eval_images: int = 300, **overrides) -> dict:
    """Train CycleGAN with `track` on `dataset`; `overrides` set CycleGANConfig fields; `eval_images`
    held-out images per domain measure the cycle error and label preservation."""
    out = Path(out)
    data = data or load_dataset(dataset, data_dir, overrides.get("seed", 0))
    defaults = DIGITS_DEFAULTS if data.digits else IMAGE_DEFAULTS
    config = CycleGANConfig(**{**defaults, **{k: v for k, v in overrides.items() if v is not None}})
    t = make_trainer(track, config, device, parts)
    batches = UnpairedDomains(data.train_a, data.train_b, config.image_size, config.batch_size,
                              jitter=not data.digits, flip=not data.digits, seed=config.seed)
    steps = min(steps_per_epoch or batches.steps_per_epoch, batches.steps_per_epoch)
    semantic, labels = {}, None
    if config.semantic_weight:
        semantic, labels = semantic_classifiers(track, t, data, config)
    run = RunState(out, config.to_dict(), lengthening=("epochs", "decay_epochs"))
    history, start = [], 0
    state = run.resume(t) if resume else None
    if state is not None:
        history, start = state["history"], state["epoch"] + 1
    total = config.epochs + config.decay_epochs
    label = f"cyclegan/{track}"
    started = time.perf_counter()
    for epoch in range(start, total):
        factor = lr_factor(epoch, config.epochs, config.decay_epochs)
        t.set_lr_factor(factor)
        sums: dict[str, float] = {}
        with tqdm(total=steps, desc=f"{label} epoch {epoch + 1}/{total}", unit="it",
                  disable=not (progress and t.is_main), leave=False) as bar:
            epoch_batches = labelled_batches(batches, data, epoch, labels) if config.semantic_weight else \
                ((a, b, None, None) for a, b in batches.epoch(epoch))
            for step, (a, b, labels_a, labels_b) in enumerate(epoch_batches):
                if step == steps:
                    break
                for k, v in t.train_step(a, b, labels_a, labels_b).items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(1)
        history.append({"epoch": epoch + 1, "lr": config.learning_rate * factor,
                        **{k: v / steps for k, v in sums.items()}})
        if progress and t.is_main:
            tqdm.write(f"{label} epoch {epoch + 1}/{total}: lr {history[-1]['lr']:.2e}  " +
                       "  ".join(f"{k} {v:.3f}" for k, v in history[-1].items() if k not in ("epoch", "lr")))
        if t.is_main:
            run.save(t, epoch, history)
    if not t.is_main:
        return {}
    metrics = {"track": track, "dataset": dataset, "data": data.source, "config": config.to_dict(),
               "steps_per_epoch": steps, "params": t.param_counts(),
               "train_seconds": time.perf_counter() - started, "history": history, **semantic}
    metrics.update(evaluate(t, data, config, out, f"CycleGAN ({track})", history, eval_images))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def semantic_classifiers(track: str, t, data: CycleData, config: CycleGANConfig):
    """The frozen DigitCNNs the semantic loss reads, handed to the trainer, and the labels of the training
    images it compares against: (metrics, (labels_a, labels_b)).

    "cycada" (Hoffman et al. 2018, eq. 3 and section 3): one classifier f_S, trained on the labelled source
    domain only, reads both translations, and its own predictions p(f_S, x) = argmax f_S(x) on the
    untranslated images are the labels, in both domains: no label of the target is used. "oracle": each
    output domain's CNN, trained on that domain's labels, reads the translation against the true label
    of its input: labels of both domains, which unpaired translation does not have (an upper bound).
    The metrics hold held-out accuracies (target labels read for reporting only; label preservation is
    judged by the SVMs, which never take part)."""
    if not data.digits:
        raise ValueError("--semantic-weight needs labelled domains: the digits task")
    if track == "torch":
        from .torch_layers import train_digit_cnn as fit
    else:
        from .tf_layers import train_digit_cnn as fit
    size, seed = config.image_size, config.seed
    domains = {"A": (data.train_a, data.test_a), "B": (data.train_b, data.test_b)}
    accuracy = lambda net, d: float(np.mean(t.classify(net, d.array(size)).argmax(1) == d.labels))  # noqa: E731
    if config.semantic_mode == "oracle":
        nets = {s: fit(tr.array(size), tr.labels, seed=seed) for s, (tr, _) in domains.items()}
        t.set_classifiers(nets["A"], nets["B"])
        return ({f"semantic_classifier_accuracy_{s}": accuracy(nets[s], te) for s, (_, te) in domains.items()},
                (data.train_a.labels, data.train_b.labels))
    source = config.semantic_source
    f_s = fit(domains[source][0].array(size), domains[source][0].labels, seed=seed)
    t.set_classifiers(f_s, f_s)
    labels = tuple(t.classify(f_s, d.array(size)).argmax(1) for d in (data.train_a, data.train_b))
    out = {"semantic_source": source,
           **{f"semantic_classifier_accuracy_{s}": accuracy(f_s, te) for s, (_, te) in domains.items()},
           **{f"pseudo_label_accuracy_{s}": float(np.mean(y == d.labels))
              for s, y, d in zip("AB", labels, (data.train_a, data.train_b))}}
    return out, labels


def evaluate(t, data: CycleData, config: CycleGANConfig, out: Path, title: str, history: list,
             n_eval: int = 300) -> dict:
    """Cycle error and (digits) label preservation on held-out images; the figures."""
    size = config.image_size
    n_a, n_b = min(n_eval, len(data.test_a)), min(n_eval, len(data.test_b))
    x, y = data.test_a.array(size, range(n_a)), data.test_b.array(size, range(n_b))
    g_x, f_y = t.translate(x, "AB"), t.translate(y, "BA")
    fg_x, gf_y = t.translate(g_x, "BA"), t.translate(f_y, "AB")
    m = {"cycle_error_A": float(np.abs(fg_x - x).mean()), "cycle_error_B": float(np.abs(gf_y - y).mean()),
         "n_eval": [n_a, n_b]}
    plots.translation_grid([x[:8], g_x[:8], fg_x[:8]], [y[:8], f_y[:8], gf_y[:8]],
                           out / "translations.png", title)
    plots.cycle_loss_curves(history, out / "loss_curves.png", title)
    if data.digits:
        m.update(LabelJudges(data).preservation(g_x, f_y))
    return m


class LabelJudges:
    """The classifiers that judge label preservation, fitted once: one per domain, trained on that domain's
    training images (an RBF SVM on pixels: 96 % on held-out MNIST from the embedded 4,000 digits in 2 s).
    They are never what a semantic loss trains against (that one is a CNN, torch_layers.DigitCNN)."""

    def __init__(self, data: CycleData):
        from ..metrics import KernelDigitClassifier

        self.data = data
        self.clf = {"A": KernelDigitClassifier().fit(data.train_a.images, data.train_a.labels,
                                                      data.test_a.images, data.test_a.labels),
                    "B": KernelDigitClassifier().fit(data.train_b.images, data.train_b.labels,
                                                      data.test_b.images, data.test_b.labels)}

    def predict(self, images: np.ndarray, domain: str) -> np.ndarray:
        """Labels of images NHWC in [-1, 1] by the judge of `domain`."""
        return self.clf[domain].predict(_to_unit(images))

    def preservation(self, g_x, f_y) -> dict:
        """Share of G(x) that B's judge gives x's label, and of F(y) that A's judge gives y's (held-out x, y
        are the first len(g_x), len(f_y) test images); the untranslated inputs under the other judge."""
        n_a, n_b = len(g_x), len(f_y)
        y_a, y_b = self.data.test_a.labels[:n_a], self.data.test_b.labels[:n_b]
        x_raw, y_raw = self.data.test_a.images[:n_a], self.data.test_b.images[:n_b]
        return {
            "label_preservation_AB": float(np.mean(self.predict(g_x, "B") == y_a)),
            "label_preservation_BA": float(np.mean(self.predict(f_y, "A") == y_b)),
            "untranslated_AB": float(np.mean(self.clf["B"].predict(x_raw) == y_a)),
            "untranslated_BA": float(np.mean(self.clf["A"].predict(y_raw) == y_b)),
            "classifier_accuracy_B": self.clf["B"].accuracy, "classifier_accuracy_A": self.clf["A"].accuracy,
        }


def labelled_batches(batches: UnpairedDomains, data: CycleData, epoch: int, labels=None):
    """The batches (a, b) of `epoch` with the labels of their images: (a, b, labels_a, labels_b); `labels`
    (one array per domain's training images, e.g. a classifier's predictions) replace the true ones."""
    labels_a, labels_b = labels if labels is not None else (data.train_a.labels, data.train_b.labels)
    idx_a, idx_b = batches.epoch_indices(epoch)
    for step, (a, b) in enumerate(batches.epoch(epoch)):
        batch = slice(step * batches.batch_size, (step + 1) * batches.batch_size)
        yield a, b, np.asarray(labels_a)[idx_a[batch]], np.asarray(labels_b)[idx_b[batch]]


def _to_unit(images: np.ndarray) -> np.ndarray:
    """[-1, 1] NHWC -> [0, 1] NHW (single channel)."""
    return np.clip((images[..., 0] + 1.0) / 2.0, 0.0, 1.0)


def train_from_args(args) -> int:
    """The CLI's entry: options of cyclegan/options.py."""
    from ..arguments import apply_quick
    from ..devices import set_threads

    images = {} if args.dataset == "digits" else {"image_size": 64}    # 256² would take minutes
    apply_quick(args, epochs=1, decay_epochs=0, steps_per_epoch=2, eval_images=16, **images)
    set_threads(args.track, args.threads)
    out = args.out or f"runs/cyclegan-{args.track}"
    m = train(args.track, dataset=args.dataset, data_dir=args.data_dir, out=out, device=args.device,
              resume=args.resume, progress=not args.no_progress, steps_per_epoch=args.steps_per_epoch,
              image_size=args.image_size, generator=args.generator, n_blocks=args.n_blocks,
              ngf=args.ngf, ndf=args.ndf, d_layers=args.d_layers, gan_mode=args.gan_mode, epochs=args.epochs,
              decay_epochs=args.decay_epochs, batch_size=args.batch_size,
              learning_rate=args.learning_rate, lambda_cycle=args.lambda_cycle,
              lambda_identity=args.lambda_identity, pool_size=args.pool_size, seed=args.seed,
              semantic_weight=args.semantic_weight, semantic_mode=args.semantic_mode,
              semantic_source=args.semantic_source, eval_images=args.eval_images)
    if not m:
        return 0
    line = f"cyclegan/{args.track}: cycle error A {m['cycle_error_A']:.3f}, B {m['cycle_error_B']:.3f}"
    if "label_preservation_AB" in m:
        line += (f"; label preservation G(x) {m['label_preservation_AB']:.1%}, "
                 f"F(y) {m['label_preservation_BA']:.1%}")
    print(f"{line}; {m['train_seconds']:.0f} s of training; figures in {out}/")
    return 0
