"""CycleGAN benchmark: seconds per full training iteration, per track, generator and size.

One iteration is the whole of CycleGAN's step: G and F forward and backward
(adversarial, cycle and identity terms), then D_A and D_B on the history pool's
fakes, batch 1, RGB, the reference widths (ngf = ndf = 64). Each configuration
runs in a process of its own, so its peak memory (max RSS) is its own; the
first iterations (tracing, XLA compile in the TF track, allocators) are timed
apart as "start". The issue's figures for a plain PyTorch implementation on a
2-core machine (2.2 s at 128² with 6 blocks, 11.2 s at 256² with 9) are printed
beside the ResNet rows.

Usage: python benchmarks/cyclegan.py [--tracks tf,torch] [--sizes 128,256]
                                     [--generators resnet,unet] [--iterations 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

REFERENCE_S = {128: 2.2, 256: 11.2}     # the issue: plain PyTorch, ResNet-6 at 128², ResNet-9 at 256²


def measure(track: str, generator: str, size: int, iterations: int, warmup: int = 2) -> dict:
    from gencourse.cyclegan.common import CycleGANConfig
    from gencourse.cyclegan.run import make_trainer

    config = CycleGANConfig(image_size=size, generator=generator)
    t0 = time.perf_counter()
    t = make_trainer(track, config, "cpu")
    rng = np.random.default_rng(0)
    batch = lambda: rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)  # noqa: E731
    for _ in range(warmup):
        t.train_step(batch(), batch())
    start = time.perf_counter() - t0
    times = []
    for _ in range(iterations):
        a, b = batch(), batch()
        t0 = time.perf_counter()
        t.train_step(a, b)
        times.append(time.perf_counter() - t0)
    return {"track": track, "generator": generator, "size": size, "blocks": config.blocks,
            "s_per_it": float(np.median(times)), "start_s": start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tracks", default="torch,tf")
    p.add_argument("--sizes", default="128,256")
    p.add_argument("--generators", default="resnet,unet")
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--one", help=argparse.SUPPRESS)    # track,generator,size: run one, print JSON
    args = p.parse_args()
    if args.one:
        track, generator, size = args.one.split(",")
        print(json.dumps(measure(track, generator, int(size), args.iterations)))
        return
    rows = []
    for size in map(int, args.sizes.split(",")):
        for generator in args.generators.split(","):
            for track in args.tracks.split(","):
                done = subprocess.run([sys.executable, __file__, "--one", f"{track},{generator},{size}",
                                       "--iterations", str(args.iterations)],
                                      capture_output=True, text=True)
                if done.returncode:
                    print(f"{track} {generator} {size}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"  {track} {generator}-{r['blocks'] if generator == 'resnet' else 'unet'} "
                      f"{size}²: {r['s_per_it']:.2f} s/it", file=sys.stderr)
    print(f"\nCycleGAN, one training iteration (G, F, D_A, D_B), batch 1, RGB, "
          f"median of {args.iterations}, CPU")
    print(f"{'size':>5} {'generator':10} {'track':6} {'s/it':>6} {'issue s/it':>10} "
          f"{'start s':>8} {'peak MB':>8}")
    for r in rows:
        name = f"resnet-{r['blocks']}" if r["generator"] == "resnet" else "unet"
        ref = REFERENCE_S.get(r["size"]) if r["generator"] == "resnet" else None
        print(f"{r['size']:>5} {name:10} {r['track']:6} {r['s_per_it']:6.2f} "
              f"{'' if ref is None else f'{ref:.1f}':>10} {r['start_s']:8.1f} {r['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
