"""Do the package's extras resolve on students' laptops? pip is asked; nothing is installed.

For each platform (Linux x86-64, macOS arm64, Windows x86-64), Python (3.10, 3.11, 3.12)
and extra of pyproject.toml, pip resolves the requirements from PyPI as that machine would:
`pip install --dry-run --report` with binary wheels only, for the platform's wheel tags
and Python version (it reads the wheels' metadata, it downloads no package). pip applies
`--platform` to wheel tags only and evaluates environment markers (`sys_platform == ...`,
here and in torch's own requirements) against the interpreter running it, so each pip runs
with packaging's marker environment replaced by the target's.

Prints a table platform x Python x extra -> the versions resolved (or pip's error), and
for Linux how many CUDA packages PyPI's torch brings (the reason the README installs torch
from PyTorch's CPU index there). tests/test_platforms.py runs three of these resolutions.

Usage: python benchmarks/platforms.py [--platforms linux-x86_64,macos-arm64,windows-x86_64]
       [--pythons 3.10,3.11,3.12] [--extras tf,torch,grading] [--jobs 9] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
from gencourse.requirements import name_of, requirements  # noqa: E402

PYTHONS = ("3.10", "3.11", "3.12")
EXTRAS = ("tf", "torch", "grading")
# What pip prints when it cannot reach an index (urllib3's and pip's own words).
OFFLINE_SIGNS = ("Failed to establish a new connection", "Temporary failure in name resolution",
                 "Network is unreachable", "Name or service not known", "Max retries exceeded",
                 "Could not fetch URL")
SHOWN = ("tensorflow", "tensorflow-cpu", "keras", "torch", "nbgrader", "numpy")

# Wheel tags each platform accepts (pip does not widen a manylinux tag to older glibc) and its markers.
PLATFORMS = {
    "linux-x86_64": ([f"manylinux_2_{n}_x86_64" for n in range(35, 16, -1)] + ["manylinux2014_x86_64"],
                     {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
                      "platform_machine": "x86_64"}),
    "macos-arm64": (["macosx_14_0_arm64"],                # torch 2.13's wheels need macOS 14
                    {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin",
                     "platform_machine": "arm64"}),
    "windows-x86_64": (["win_amd64"],
                       {"os_name": "nt", "sys_platform": "win32", "platform_system": "Windows",
                        "platform_machine": "AMD64"}),
}

# Runs pip with the target's marker environment: argv[1] the markers (JSON), the rest pip's arguments.
PIP_FOR_TARGET = """
import json, sys
import pip._vendor.packaging.markers as markers
target, here = json.loads(sys.argv[1]), markers.default_environment
markers.default_environment = lambda: {**here(), **target}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@dataclass
class Resolution:
    platform: str
    python: str
    extras: list[str]
    versions: dict[str, str] = field(default_factory=dict)   # every distribution pip would install
    error: str = ""
    seconds: float = 0.0
    offline: bool = False          # pip could not reach the index at all

    @property
    def cuda(self) -> int:
        """How many CUDA runtime distributions (nvidia-*, cuda-*) the resolution holds."""
        return sum(n.startswith(("nvidia-", "cuda-")) for n in self.versions)

    def shown(self) -> str:
        if self.error:
            return "ERROR " + self.error
        parts = [f"{n} {self.versions[n]}" for n in SHOWN if n in self.versions]
        return ", ".join(parts) + (f" (+{self.cuda} CUDA packages)" if self.cuda else "")


def markers_of(platform: str, python: str) -> dict:
    full = f"{python}.0"
    return {**PLATFORMS[platform][1], "python_version": python, "python_full_version": full,
            "implementation_name": "cpython", "implementation_version": full,
            "platform_python_implementation": "CPython", "platform_release": "", "platform_version": ""}


def resolve(platform: str, python: str, extras, *, index_url: str | None = None,
            timeout: float = 600) -> Resolution:
    """What pip would install for the package's base dependencies and `extras` on that machine."""
    extras = list(extras)
    reqs = requirements(ROOT / "pyproject.toml", extras)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gencourse-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-c", PIP_FOR_TARGET, json.dumps(markers_of(platform, python)),
               "install", "--isolated", *(["--index-url", index_url] if index_url else []),
               "--dry-run", "--ignore-installed",
               "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
               "--target", str(Path(tmp) / "target"), "--report", str(report), "--quiet", "--no-input",
               # range requests read only the metadata inside each wheel, where an index (a mirror) does
               # not serve it on its own (PEP 658): without, linux-x86_64 torch downloads 2.9 GB
               "--use-feature=fast-deps"]
        for tag in PLATFORMS[platform][0]:
            cmd += ["--platform", tag]
        try:
            done = subprocess.run(cmd + reqs, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Resolution(platform, python, extras, error=f"pip took over {timeout:.0f} s",
                              seconds=time.monotonic() - start)
        seconds = time.monotonic() - start
        if done.returncode != 0:
            if any(sign in done.stderr for sign in OFFLINE_SIGNS):
                return Resolution(platform, python, extras, error="offline: " + done.stderr[-300:],
                                  seconds=seconds, offline=True)
            lines = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
            return Resolution(platform, python, extras, error=" ".join(lines[-2:]) or done.stderr[-300:],
                              seconds=seconds)
        installs = json.loads(report.read_text())["install"]
    versions = {name_of(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
    return Resolution(platform, python, extras, versions, seconds=seconds)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--platforms", default=",".join(PLATFORMS), help="comma-separated, of: " + ", ".join(PLATFORMS))
    p.add_argument("--pythons", default=",".join(PYTHONS), help="comma-separated Python versions")
    p.add_argument("--extras", default=",".join(EXTRAS), help="comma-separated extras, each resolved alone")
    p.add_argument("--jobs", type=int, default=9, help="pip processes at once (default 9)")
    p.add_argument("--index-url", help="the index pip asks (default: pip's own, PyPI)")
    p.add_argument("--json", help="also write every resolution to this file")
    args = p.parse_args(argv)
    todo = [(plat, py, [extra]) for plat in args.platforms.split(",") for py in args.pythons.split(",")
            for extra in args.extras.split(",")]
    start = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda t: resolve(*t, index_url=args.index_url), todo))
    print(f"{'platform':15} {'python':6} {'extra':8} {'seconds':>7}  resolved")
    for r in done:
        print(f"{r.platform:15} {r.python:6} {','.join(r.extras):8} {r.seconds:7.1f}  {r.shown()}")
    print(f"{len(done)} resolutions, {sum(bool(r.error) for r in done)} failed, "
          f"{time.monotonic() - start:.0f} s with {args.jobs} at once")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in done], indent=1) + "\n")
    return 1 if any(r.error for r in done) else 0


if __name__ == "__main__":
    sys.exit(main())
