"""python -m gencourse.stylegan.pretrained RUN_DIR --command "..." --machine "...":
ship the Gs of a finished `gencourse train stylegan --track torch` run (see __init__.export)."""

import argparse

from . import export

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("run_dir")
p.add_argument("--command", required=True, help="the exact command that trained the run")
p.add_argument("--machine", required=True, help="where it ran (cores, threads, load)")
args = p.parse_args()
m = export(args.run_dir, args.command, args.machine)
print(f"shipped: Frechet distance {m['frechet_distance']:.2f} (floor {m['frechet_floor']:.2f})")
