"""The Gradescope autograder's zip: what `gencourse gradescope` builds.

`build_autograder_zip` writes a zip with, at its root (as Gradescope's
specification asks, https://gradescope-autograders.readthedocs.io/en/latest/specs/):

    setup.sh                    runs once, as root, when Gradescope builds the image
    run_autograder              runs once per submission, as root, in /autograder
    gencourse_autograder.json   the assignment, its tracks and their notebook names
    dist/<gencourse wheel>      this package, built from this repository
    solutions/<assignment>/     the source notebooks: the grader runs their setup cells, not the student's
    hidden/                     the hidden checks (autograder/hidden/ of the repository)

Both scripts make /autograder/source readable by root only, so the grader
(root) loads the hidden checks and the worker (an unprivileged user id the
grader borrows) cannot; run_autograder calls `gradescope.run`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .paths import project_root
from .results_json import VISIBILITIES

ROOT_ENV = "GENCOURSE_AUTOGRADER_ROOT"
PYTHON_ENV = "GENCOURSE_AUTOGRADER_PYTHON"
CONFIG_NAME = "gencourse_autograder.json"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
EXTRAS = {"tf": "tf", "torch": "torch"}     # track -> the package extra that installs its framework (CPU build)


class AutograderBuildError(ValueError):
    """The zip cannot be built; the message says why (the CLI prints it as an error)."""


def tracks_of(assignment: str, solutions: Path) -> dict[str, str]:
    """{assignment key: notebook file name} from solutions/<assignment>/<assignment>_<track>.ipynb."""
    folder = solutions / assignment
    found = {}
    for nb in sorted(folder.glob(f"{assignment}_*.ipynb")):
        track = nb.stem[len(assignment) + 1:]
        if track:
            found[f"{assignment}-{track}"] = nb.name
    return found


def hidden_files_of(assignment: str, hidden: Path, notebooks: dict[str, str]) -> list[Path]:
    """This assignment's hidden-check files, as the grader looks them up: <key>.py, then <name>.py."""
    if not hidden.is_dir():
        return []
    names = [f"{key}.py" for key in notebooks] + [f"{assignment}.py"]
    return [hidden / n for n in dict.fromkeys(names) if (hidden / n).is_file()]


def build_wheel(source: Path, out_dir: Path) -> Path:
    """A wheel of the gencourse package from a source tree (pyproject.toml, README.md, lib/), offline."""
    source = Path(source)
    if not (source / "pyproject.toml").is_file():
        raise AutograderBuildError(f"no pyproject.toml in {source}: pass --wheel with a built gencourse wheel")
    with tempfile.TemporaryDirectory(prefix="gencourse-wheel-") as tmp:
        tree = Path(tmp) / "src"
        tree.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (source / name).is_file():
                shutil.copy2(source / name, tree / name)
        shutil.copytree(source / "lib", tree / "lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", "-q", "-w", str(out_dir), str(tree)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise AutograderBuildError("building the gencourse wheel failed:\n" + done.stdout + done.stderr)
    wheels = sorted(Path(out_dir).glob("gencourse-*.whl"))
    if not wheels:
        raise AutograderBuildError(f"pip wheel wrote no gencourse wheel to {out_dir}")
    return wheels[-1]


SETUP_SH = r"""#!/usr/bin/env bash
# gencourse autograder for "{assignment}": image setup. Gradescope runs this once, as root,
# on its Ubuntu base image, with /autograder/source holding the zip's contents.
set -euxo pipefail
SRC=/autograder/source
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {{
  echo "gencourse needs Python >= 3.10: choose an Ubuntu 22.04 (or newer) base image in Gradescope's autograder settings" >&2
  exit 1
}}
# A virtual environment of our own: no clash with the image's python packages (PEP 668).
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
# CPU builds only: torch from PyTorch's CPU index, tensorflow-cpu through the package's tf extra.
{torch_line}/autograder/venv/bin/python -m pip install "$SRC/dist/{wheel}[{extras}]"
/autograder/venv/bin/python -c "import gencourse.grading.gradescope"
# The grader runs as root; the worker runs under a user id that owns nothing (borrowed per
# submission), so it can read the venv but nothing of /autograder/source: hidden checks and
# source notebooks are root's only.
chown -R root:root "$SRC"
chmod -R go-rwx "$SRC"
chmod 755 /autograder
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# gencourse autograder for "{assignment}": grades one submission, as root, in /autograder.
# It always leaves results/results.json, with an explanation when grading failed.
ROOT="${{{root_env}:-/autograder}}"
PY="${{{python_env}:-$ROOT/venv/bin/python}}"
ROOT="$(cd "$ROOT" && pwd)" || exit 0
case "$PY" in /*) ;; */*) PY="$PWD/$PY" ;; esac      # relative paths, before the cd below
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
chmod -R go-rwx "$ROOT/source" 2>/dev/null || true
cd "$ROOT" || exit 0
"$PY" -m gencourse.grading.gradescope run --root "$ROOT"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
  cat > "$ROOT/results/results.json" <<EOF
{{"score": 0.0, "output": "gencourse autograder: the grader could not start (exit status $status), so your submission was not graded. Please tell your instructor.", "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}}
EOF
fi
exit 0
"""


def container_lines(autograder_dir: Path, keys) -> list[str]:
    """What each track needs of Gradescope's container, as measured (autograder/container.json)."""
    from .container import need_mb, read_needs

    needs, lines = read_needs(autograder_dir), []
    for key in keys:
        e = needs.get(key)
        if e is None:
            lines.append(f"{key}: no measured need (run python benchmarks/container.py --write)")
        else:
            lines.append(f"{key}: needs {need_mb(e)} MB (peak {e['peak_mb']:.0f} MB, {e['seconds']:.0f} s of grading "
                         f"with {e['cpus']:g} CPU, measured {e.get('measured', '?')})")
    return lines


def check_container(autograder_dir: Path, notebooks: dict, memory_mb: int) -> None:
    """AutograderBuildError when a track needs more memory than the container will have."""
    from .container import need_mb, read_needs

    needs = read_needs(autograder_dir)
    for key in notebooks:
        if key in needs and need_mb(needs[key]) > memory_mb:
            raise AutograderBuildError(
                f"{key} needs {need_mb(needs[key])} MB (its grading peaked at {needs[key]['peak_mb']:.0f} MB), more "
                f"than a container of {memory_mb} MB: choose a larger container in Gradescope's autograder settings "
                "and pass it as --memory-mb")


def _zip_add(zf: zipfile.ZipFile, arcname: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16        # a regular file with these permissions
    zf.writestr(info, data)


def build_autograder_zip(assignment: str, out: str | os.PathLike | None = None, *,
                         wheel: str | os.PathLike | None = None, source: str | os.PathLike | None = None,
                         tracks: list[str] | None = None, hidden_dir: str | os.PathLike | None = None,
                         solutions: str | os.PathLike | None = None,
                         hidden_visibility: str = "after_published", memory_mb: int | None = None) -> Path:
    """Write the Gradescope autograder zip of `assignment`; returns its path.

    `wheel`: a built gencourse wheel (or sdist) to ship; by default one is built
    from `source` (the repository, by default the one this module is in).
    `tracks`: which tracks to install and accept ("tf", "torch"; default: every
    solutions/<assignment>/<assignment>_<track>.ipynb). `hidden_dir`: the
    hidden checks (default <source>/autograder/hidden). `hidden_visibility`:
    "after_published" (default) or "hidden", for the hidden checks' results.
    """
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"hidden_visibility must be one of {VISIBILITIES}")
    if source is None:
        source = project_root()
        if source is None:
            raise AutograderBuildError("not in a checkout of the course: pass --source with the course's "
                                       "repository (its solutions/ and autograder/hidden/ go into the zip)")
    source = Path(source)
    solutions = Path(solutions) if solutions is not None else source / "solutions"
    hidden = Path(hidden_dir) if hidden_dir is not None else source / "autograder" / "hidden"
    out = Path(out) if out is not None else Path(f"gencourse-{assignment}-autograder.zip")

    notebooks = tracks_of(assignment, solutions)
    if tracks is not None:
        wanted = {f"{assignment}-{t}" for t in tracks}
        missing = wanted - set(notebooks)
        if missing and notebooks:
            raise AutograderBuildError(f"no solution notebook for {', '.join(sorted(missing))} in {solutions / assignment}")
        notebooks = {k: notebooks.get(k, f"{k.replace('-', '_')}.ipynb") for k in sorted(wanted)}
    if not notebooks:
        raise AutograderBuildError(f"no solution notebooks {assignment}_<track>.ipynb in {solutions / assignment}; "
                                   "name them with --tracks (tracks=)")
    track_names = [k[len(assignment) + 1:] for k in notebooks]
    extras = sorted({EXTRAS.get(t, t) for t in track_names})

    hidden_files = hidden_files_of(assignment, hidden, notebooks)
    if memory_mb is not None:
        check_container(source / "autograder", notebooks, memory_mb)

    with tempfile.TemporaryDirectory(prefix="gencourse-zip-") as tmp:
        if wheel is None:
            wheel_path = build_wheel(source, Path(tmp))
        else:
            wheel_path = Path(wheel)
            if not wheel_path.is_file():
                raise AutograderBuildError(f"no such wheel or sdist: {wheel_path}")
        config = {
            "assignment": assignment,
            "notebooks": notebooks,
            "hidden_visibility": hidden_visibility,
            "package": f"dist/{wheel_path.name}",
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        torch_line = ""
        if "torch" in extras:
            torch_line = (f"/autograder/venv/bin/python -m pip install --index-url {TORCH_CPU_INDEX} "
                          f"{_torch_pin(source)}\n")
        setup = SETUP_SH.format(assignment=assignment, wheel=wheel_path.name, extras=",".join(extras),
                                torch_line=torch_line)
        run = RUN_AUTOGRADER.format(assignment=assignment, root_env=ROOT_ENV, python_env=PYTHON_ENV)

        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with zipfile.ZipFile(partial, "w") as zf:
            _zip_add(zf, "setup.sh", setup.encode(), 0o755)
            _zip_add(zf, "run_autograder", run.encode(), 0o755)
            _zip_add(zf, CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode(), 0o600)
            _zip_add(zf, f"dist/{wheel_path.name}", wheel_path.read_bytes(), 0o600)
            for key, name in notebooks.items():
                nb = solutions / assignment / name
                if nb.is_file():
                    _zip_add(zf, f"solutions/{assignment}/{name}", nb.read_bytes(), 0o600)
            for p in hidden_files:
                _zip_add(zf, "hidden/" + p.relative_to(hidden).as_posix(), p.read_bytes(), 0o600)
        os.replace(partial, out)
    return out


def _torch_pin(source: Path) -> str:
    """The torch extra's requirement in `source`'s pyproject.toml, quoted for the shell ("'torch==2.13.0'");
    the image runs Linux, so a marker is dropped."""
    from ..requirements import pin

    try:
        return "'" + pin(source / "pyproject.toml", "torch", "torch").split(";")[0].replace(" ", "") + "'"
    except (KeyError, OSError) as e:
        raise AutograderBuildError(f"no torch pin for the image: {e}") from e
