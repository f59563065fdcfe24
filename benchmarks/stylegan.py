"""StyleGAN benchmark: images/s for training and for generation per track, and peak memory.

Protocol: the run's default network (gencourse.stylegan.run.CPU_SIZE: z = w = 64,
fmap_base 512, 32x32, one channel), batch `--batch-size` (default 32, the run's),
random digits in [-1, 1] (speed does not depend on the data). Training: one D
step (with R1) and one G step per batch, `--steps` timed after two warm-up steps
(graph tracing, allocators); an image is one real image through a full step.
Generation: mapping + synthesis of `--gen` images in chunks of 256, with noise.
Each track runs in a process of its own so that its peak memory (max RSS; and
the CUDA allocator's peak on a GPU) is its own.
Usage: python benchmarks/stylegan.py [--tracks tf,torch] [--steps 20] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def measure(track: str, steps: int, batch: int, gen: int, device: str) -> dict:
    from gencourse.stylegan import run, sampling

    config = run.make_config(batch_size=batch)
    trainer = sampling.make_trainer(track, config, device)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, config.resolution, config.resolution)).astype(np.float32)
    for _ in range(2):
        trainer.train_step(x, rng)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x, rng)
    step_s = (time.perf_counter() - t0) / steps
    sampling.generate(trainer, rng, 64)                 # warm-up
    t0 = time.perf_counter()
    sampling.generate(trainer, rng, gen)
    gen_s = time.perf_counter() - t0
    gpu_mb = None
    if track == "torch":
        import torch

        if torch.cuda.is_available() and trainer.device.type == "cuda":
            gpu_mb = torch.cuda.max_memory_allocated() / 2**20
    return {"track": track, "step_s": step_s, "train_img_s": batch / step_s,
            "gen_img_s": gen / gen_s, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "gpu_mb": gpu_mb, "params": trainer.param_counts()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tracks", default="tf,torch")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--gen", type=int, default=1024, help="images generated for the timing")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.steps, args.batch_size, args.gen, args.device)))
        return
    rows = []
    for track in args.tracks.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", track, "--steps", str(args.steps),
                              "--batch-size", str(args.batch_size), "--gen", str(args.gen),
                              "--device", args.device], capture_output=True, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if out.returncode:
            sys.exit(f"{track} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"StyleGAN 32x32, default CPU network, batch {args.batch_size}, {args.steps} timed steps, "
          f"device {args.device}, CPU threads: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    head = (f"{'track':6} {'s/step':>7} {'train img/s':>12} {'gen img/s':>10} {'peak RSS MB':>12} "
            f"{'GPU MB':>7} {'G params':>9} {'D params':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        gpu = f"{r['gpu_mb']:7.0f}" if r["gpu_mb"] is not None else f"{'-':>7}"
        print(f"{r['track']:6} {r['step_s']:7.3f} {r['train_img_s']:12.1f} {r['gen_img_s']:10.0f} "
              f"{r['peak_mb']:12.0f} {gpu} {r['params']['generator']:9d} "
              f"{r['params']['discriminator']:9d}")


if __name__ == "__main__":
    main()
