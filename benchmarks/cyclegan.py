"""CycleGAN benchmark: seconds per training iteration, each track against plain code, same run.

One iteration is the whole of CycleGAN's step: G and F forward and backward
(adversarial, cycle and identity terms), then D_A and D_B on the history pool's
fakes. Two settings:

- `128` / `256`: the reference's images, RGB, ResNet-6 at 128² (ResNet-9 at 256²),
  ngf = ndf = 64, the 70x70 PatchGAN, batch 1;
- `digits`: the offline task's, 28² grey, ngf = ndf = 16, ResNet-6, a 34x34 PatchGAN,
  batch 16 (`gencourse train cyclegan`'s defaults).

Per setting four implementations run, each in a process of its own (so its peak
memory, max RSS, is its own), in the order plain PyTorch, the torch track, plain
Keras, the TF track, `--rounds` times interleaved so that a change of load on the
machine hits all of them alike: `benchmarks/plain_cyclegan.py` holds the plain ones,
which share nothing with the package. The first iterations (model building,
tracing; XLA's compile where the TF track uses it, on accelerators) are timed apart as "start". The ratio is
plain s/it over the track's, the same framework's: above 1 the package is faster.

Usage: python benchmarks/cyclegan.py [--settings 128,digits] [--iterations 5] [--rounds 2] [--threads 1]
                                     [--implementations plain-torch,torch,plain-keras,tf]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SETTINGS = {
    "128": dict(image_size=128, channels=3, ngf=64, ndf=64, d_layers=3, batch=1),
    "256": dict(image_size=256, channels=3, ngf=64, ndf=64, d_layers=3, batch=1),
    "digits": dict(image_size=28, channels=1, ngf=16, ndf=16, d_layers=2, batch=16),
}
IMPLEMENTATIONS = ("plain-torch", "torch", "plain-keras", "tf")
PLAIN_OF = {"torch": "plain-torch", "tf": "plain-keras"}
# Every framework's thread pools, set alike in each measured process (--threads).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def build(implementation: str, s: dict):
    """A trainer with `train_step(a, b)` for one implementation at setting `s`."""
    from gencourse.cyclegan.common import default_n_blocks

    blocks = default_n_blocks(s["image_size"])
    if implementation.startswith("plain-"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import plain_cyclegan

        if implementation == "plain-torch":
            return plain_cyclegan.PlainTorch(s["channels"], s["ngf"], s["ndf"], blocks, s["d_layers"])
        return plain_cyclegan.PlainKeras(s["channels"], s["ngf"], s["ndf"], blocks, s["d_layers"], s["image_size"])
    from gencourse.cyclegan.common import CycleGANConfig
    from gencourse.cyclegan.run import make_trainer

    config = CycleGANConfig(image_size=s["image_size"], channels=s["channels"], ngf=s["ngf"], ndf=s["ndf"],
                            d_layers=s["d_layers"], batch_size=s["batch"])
    return make_trainer(implementation, config, "cpu")


def measure(implementation: str, setting: str, iterations: int, warmup: int = 2) -> dict:
    s = SETTINGS[setting]
    rng = np.random.default_rng(0)
    shape = (s["batch"], s["image_size"], s["image_size"], s["channels"])
    batch = lambda: rng.uniform(-1, 1, shape).astype(np.float32)  # noqa: E731
    t0 = time.perf_counter()
    trainer = build(implementation, s)
    for _ in range(warmup):
        trainer.train_step(batch(), batch())
    start = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(iterations):
        a, b = batch(), batch()
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step(a, b)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"implementation": implementation, "setting": setting, "s_per_it": float(np.median(times)),
            "cpu_s_per_it": float(np.median(cpu)),
            "start_s": start, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_one(implementation: str, setting: str, iterations: int, threads: int) -> dict | None:
    env = {**os.environ, **{k: str(threads) for k in THREAD_VARS}}
    done = subprocess.run([sys.executable, __file__, "--one", f"{implementation},{setting}",
                           "--iterations", str(iterations)], capture_output=True, text=True, env=env)
    if done.returncode:
        print(f"{implementation} {setting}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", default="128,digits", help="comma-separated: 128, 256, digits")
    p.add_argument("--implementations", default=",".join(IMPLEMENTATIONS),
                   help="comma-separated: plain-torch, torch, plain-keras, tf")
    p.add_argument("--iterations", type=int, default=5, help="timed iterations per process (median)")
    p.add_argument("--rounds", type=int, default=2, help="processes per implementation, interleaved")
    p.add_argument("--threads", type=int, default=1, help="threads of each framework's pools (one: the CPU "
                   "time is one core's, and five measurements can share two cores fairly)")
    p.add_argument("--one", help=argparse.SUPPRESS)    # implementation,setting: run one, print JSON
    args = p.parse_args()
    if args.one:
        implementation, setting = args.one.split(",")
        print(json.dumps(measure(implementation, setting, args.iterations)))
        return
    settings, impls = args.settings.split(","), args.implementations.split(",")
    for name in settings:
        if name not in SETTINGS:
            p.error(f"--settings: unknown setting {name!r} (known: {', '.join(SETTINGS)})")
    for name in impls:
        if name not in IMPLEMENTATIONS:
            p.error(f"--implementations: unknown {name!r} (known: {', '.join(IMPLEMENTATIONS)})")
    rows = {}
    for setting in settings:
        for round_ in range(args.rounds):
            for impl in impls:
                r = run_one(impl, setting, args.iterations, args.threads)
                if r is None:
                    continue
                print(f"  {setting} {impl} round {round_ + 1}: {r['s_per_it']:.3f} s/it", file=sys.stderr)
                rows.setdefault((setting, impl), []).append(r)
    print(f"\nCycleGAN, one training iteration (G, F, D_A, D_B), CPU; median of {args.iterations} "
          f"iterations, best of {args.rounds} interleaved processes (wall and CPU time each)")
    print(f"{'setting':>7} {'implementation':14} {'s/it':>7} {'vs plain':>9} {'cpu s/it':>9} {'vs plain':>9} "
          f"{'start s':>8} {'peak MB':>8}")
    for setting in settings:
        best = {impl: min(rs, key=lambda r: r["s_per_it"]) for (st, impl), rs in rows.items() if st == setting}
        for impl in impls:
            if impl not in best:
                continue
            r, plain = best[impl], best.get(PLAIN_OF.get(impl, ""))
            ratio = f"{plain['s_per_it'] / r['s_per_it']:.2f}x" if plain else ""
            cpu = min(x["cpu_s_per_it"] for x in rows[(setting, impl)])
            plain_cpu = min(x["cpu_s_per_it"] for x in rows[(setting, PLAIN_OF[impl])]) if plain else None
            cpu_ratio = f"{plain_cpu / cpu:.2f}x" if plain else ""
            print(f"{setting:>7} {impl:14} {r['s_per_it']:7.3f} {ratio:>9} {cpu:9.3f} {cpu_ratio:>9} "
                  f"{r['start_s']:8.1f} {r['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
