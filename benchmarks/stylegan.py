"""StyleGAN benchmark: images/s for training and for generation per track and setting,
and peak memory.

Protocol: per track, the run's setting before issue 14 ("before": CPU_SIZE of then,
R1 every step, no augmentation, linear output, NCHW torch) and the run's default now
("default": gencourse.stylegan.run.make_config(): lazy R1 every 16 steps, TTUR, tanh,
channels-last torch on a CPU), same machine, same run; "shipped" times the shipped
model's recorded configuration (gencourse.stylegan.pretrained.config(), the default's). Batch `--batch-size` (default: the run's), random
digits in [-1, 1] (speed does not depend on the data). Training: one D step and one G
step per batch, `--steps` timed after two warm-up steps (graph tracing, allocators),
from step 3 on, so a lazy-R1 setting pays its R1 step at its share; an image is one
real image through a full step. Generation: mapping + synthesis of `--gen` images in
chunks of 256, with noise. Each (track, setting) runs in a process of its own so that
its peak memory (max RSS; and the CUDA allocator's peak on a GPU) is its own.
`--profile` prints the torch step's most expensive operators (torch.profiler).
Usage: python benchmarks/stylegan.py [--tracks tf,torch] [--settings before,default[,shipped]]
       [--steps 32] [--device auto] [--threads 1] [--profile]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


# The run's setting before issue 14 (CPU_SIZE and DEFAULTS of commit fdfd1cd).
BEFORE = dict(z_dim=64, w_dim=64, fmap_base=512, fmap_max=64, mapping_layers=2, r1_interval=1,
              augment="", ema_rampup=0.0, r1_gamma=1.0, learning_rate=1e-3, output="linear")


def measure(track: str, setting: str, steps: int, batch: int | None, gen: int, device: str,
            threads: int | None, profile: bool = False) -> dict:
    from gencourse.devices import set_threads
    from gencourse.stylegan import common, run, sampling

    set_threads(track, threads)
    if setting == "before":
        config = common.StyleGANConfig(**BEFORE, batch_size=batch or 32)
    elif setting == "shipped":
        from gencourse.stylegan import pretrained

        config = pretrained.config()
        config = dataclasses.replace(config, batch_size=batch or config.batch_size)
    else:
        config = run.make_config(batch_size=batch)
    if track == "torch":
        from gencourse.stylegan.torch_track import TorchStyleGAN

        trainer = TorchStyleGAN(config, device, channels_last=False if setting == "before" else None)
    else:
        trainer = sampling.make_trainer(track, config, device)
    b = config.batch_size
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (b, config.resolution, config.resolution)).astype(np.float32)
    for step in (1, 2):
        trainer.train_step(x, rng, step)
    t0 = time.perf_counter()
    for step in range(3, 3 + steps):
        trainer.train_step(x, rng, step)
    step_s = (time.perf_counter() - t0) / steps
    top = None
    if profile and track == "torch":
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for step in range(3 + steps, 3 + steps + config.r1_interval):
                trainer.train_step(x, rng, step)
        top = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    sampling.generate(trainer, rng, 64)                 # warm-up
    t0 = time.perf_counter()
    sampling.generate(trainer, rng, gen)
    gen_s = time.perf_counter() - t0
    gpu_mb = None
    if track == "torch":
        import torch

        if torch.cuda.is_available() and trainer.device.type == "cuda":
            gpu_mb = torch.cuda.max_memory_allocated() / 2**20
    return {"track": track, "setting": setting, "batch": b, "step_s": step_s,
            "train_img_s": b / step_s, "gen_img_s": gen / gen_s,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "gpu_mb": gpu_mb, "params": trainer.param_counts(), "profile": top}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", default="tf,torch")
    ap.add_argument("--settings", default="before,default")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--batch-size", type=int, help="default: the run's (before: 32)")
    ap.add_argument("--gen", type=int, default=1024, help="images generated for the timing")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads per operation (default 1, as the CPU run)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        track, setting = args.child.split(":")
        print(json.dumps(measure(track, setting, args.steps, args.batch_size, args.gen,
                                 args.device, args.threads, args.profile)))
        return
    rows = []
    for setting in args.settings.split(","):
        for track in args.tracks.split(","):
            cmd = [sys.executable, __file__, "--child", f"{track}:{setting}", "--steps",
                   str(args.steps), "--gen", str(args.gen), "--device", args.device,
                   "--threads", str(args.threads)]
            cmd += ["--batch-size", str(args.batch_size)] if args.batch_size else []
            cmd += ["--profile"] if args.profile else []
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if out.returncode:
                sys.exit(f"{track} {setting} failed:\n{out.stderr[-3000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"StyleGAN 32x32, {args.steps} timed steps, device {args.device}, {args.threads} "
          f"thread(s), CPU cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    head = (f"{'track':6} {'setting':8} {'batch':>5} {'s/step':>7} {'train img/s':>12} "
            f"{'gen img/s':>10} {'peak RSS MB':>12} {'GPU MB':>7} {'G params':>9} {'D params':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        gpu = f"{r['gpu_mb']:7.0f}" if r["gpu_mb"] is not None else f"{'-':>7}"
        print(f"{r['track']:6} {r['setting']:8} {r['batch']:5d} {r['step_s']:7.3f} "
              f"{r['train_img_s']:12.1f} {r['gen_img_s']:10.0f} {r['peak_mb']:12.0f} {gpu} "
              f"{r['params']['generator']:9d} {r['params']['discriminator']:9d}")
    for r in rows:
        if r["profile"]:
            print(f"\n{r['track']} {r['setting']}: one lazy-R1 cycle of steps, top operators\n"
                  f"{r['profile']}")


if __name__ == "__main__":
    main()
