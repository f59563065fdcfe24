"""`gencourse experiment stylegan-mixing`: a small version of the paper's Table 2.

Models trained with mixing regularization at several probabilities, each scored
by the Fréchet distance (package classifier features, to the test digits) of
samples whose styles mix 1 to 4 latents at random crossover layers. The paper's
claim: without mixing regularization, images from several latents degrade
quickly; with it, they hold up.

PAPER_TABLE_2: Karras, Laine & Aila 2019 (arXiv:1812.04948), Table 2, FFHQ FIDs
at 1024x1024, rows 0 %, 50 %, 90 %, 100 % mixing, columns 1 .. 4 latents at test
time. Written from the paper; the search tool's stored copies of the paper cut
off before the table, so these were not re-checked against a stored copy here.

A row need not be trained here: `models` ({prob: run folder or "shipped"}) scores a
finished `gencourse train stylegan` run (its checkpoint and config) or the package's
shipped generator (trained with mixing 0.9) as the row for that probability.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..data import load_mnist
from ..arguments import apply_quick
from ..devices import set_threads
from . import run, sampling

PAPER_TABLE_2 = {0.0: (4.42, 8.22, 12.88, 17.41), 0.5: (4.41, 6.10, 8.71, 11.61),
                 0.9: (4.40, 5.11, 6.88, 9.03), 1.0: (4.83, 5.17, 6.63, 8.40)}
LATENTS = (1, 2, 3, 4)
DEFAULT_STEPS, QUICK_STEPS = 3000, 60    # 3,000: the default training run's budget
DEFAULT_SAMPLES, QUICK_SAMPLES = 2000, 300


def mixing_table(track: str, probs, *, steps: int, samples: int, data, seed: int = 0,
                 device: str = "auto", progress: bool = True, batch_size: int | None = None,
                 r1_gamma: float | None = None, learning_rate: float | None = None,
                 classifier=None, models=None, **size) -> dict:
    """{prob: [Fréchet distance with 1 .. 4 latents]} plus the floor and the seconds spent;
    `models` {prob: run folder or "shipped"} gives rows scored rather than trained."""
    clf = classifier or run.classifier_for(data, seed)
    scorer = sampling.FrechetScorer(clf, data.x_test)
    x_train = sampling.to_model_images(data.x_train)
    rows, sources, started = {}, {}, time.perf_counter()
    models = models or {}
    for p in sorted(set(probs) | set(models)):
        if p in models:
            trainer, sources[p] = trained_model(track, models[p], device)
        else:
            config = run.make_config(mixing_prob=p, r1_gamma=r1_gamma, learning_rate=learning_rate,
                                     batch_size=batch_size, seed=seed, **size)
            trainer = sampling.make_trainer(track, config, device)
            run.fit(trainer, x_train, epochs=1, steps_per_epoch=steps, out=None, progress=progress,
                    label=f"mixing {p:g}")
            sources[p] = f"trained here, {steps} steps"
        rng = np.random.default_rng([seed, 4])
        rows[p] = [scorer.score(sampling.generate(trainer, rng, samples, n_latents=k))
                   for k in LATENTS]
    real = data.x_train[np.random.default_rng(seed).choice(len(data.x_train),
                                                           min(samples, len(data.x_train)),
                                                           replace=False)]
    return {"track": track, "steps": steps, "samples": samples, "rows": rows, "sources": sources,
            "floor": scorer.score(real.astype(np.float32) / 255.0),
            "seconds": time.perf_counter() - started}


def trained_model(track: str, source: str, device: str = "auto"):
    """(sampler, description) of a row's model: "shipped" or a `gencourse train stylegan` folder."""
    if source == "shipped":
        from . import pretrained

        return pretrained.load(track, device), "the shipped generator"
    folder = Path(source).expanduser()
    metrics_file = folder / "metrics.json"
    if not metrics_file.is_file() or not (folder / "checkpoint").is_dir():
        raise ValueError(f"{folder}: not a finished `gencourse train stylegan` run (no metrics.json "
                         f"and checkpoint/ in it)")
    m = json.loads(metrics_file.read_text())
    from .common import StyleGANConfig

    trainer = sampling.make_trainer(m.get("track", track), StyleGANConfig(**m["config"]), device)
    trainer.load(folder / "checkpoint")      # the run's own track: its checkpoint's format
    return trainer, f"{folder} ({m.get('track', track)}, {m.get('steps', '?')} steps)"


def format_table(result: dict) -> str:
    """Ours beside the paper's, one row per mixing probability."""
    head = (f"{'mixing':>7} | {'ours: Frechet distance, 1..4 latents':^39} | "
            f"{'paper (FFHQ FID), 1..4 latents':^31}")
    lines = [head, "-" * len(head)]
    for p, ours in result["rows"].items():
        paper = PAPER_TABLE_2.get(float(p))
        theirs = "  ".join(f"{v:6.2f}" for v in paper) if paper else "-"
        lines.append(f"{float(p):>7.0%} | " + "  ".join(f"{v:8.2f}" for v in ours)
                     + f"   | {theirs}")
    lines.append(f"floor (real train vs test digits): {result['floor']:.2f}; "
                 f"{result['samples']} samples per score, {result['track']} track, "
                 f"{result['seconds'] / 60:.1f} min")
    for p, source in result.get("sources", {}).items():
        lines.append(f"  {float(p):.0%}: {source}")
    return "\n".join(lines)


def mixing_from_args(args) -> int:
    apply_quick(args, steps=2, fid_samples=200)
    probs = args.probs
    set_threads(args.track, args.threads)
    steps = args.steps or (QUICK_STEPS if args.quick else DEFAULT_STEPS)
    samples = args.fid_samples or (QUICK_SAMPLES if args.quick else DEFAULT_SAMPLES)
    data = load_mnist(args.data_dir)
    result = mixing_table(args.track, probs, steps=steps, samples=samples, data=data,
                          seed=args.seed, device=args.device, progress=not args.no_progress,
                          batch_size=args.batch_size, r1_gamma=args.r1_gamma,
                          learning_rate=args.learning_rate, models=dict(args.model),
                          **run.model_options(args))
    table = format_table(result)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.txt").write_text(table + "\n")
    saved = dict(result, rows={str(p): v for p, v in result["rows"].items()},
                 sources={str(p): v for p, v in result["sources"].items()},
                 paper={str(p): v for p, v in PAPER_TABLE_2.items()})
    (out / "mixing.json").write_text(json.dumps(saved, indent=2))
    print(f"written: {out}/table.txt, {out}/mixing.json")
    return 0
