"""The Gradescope autograder: building its zip, and what runs inside Gradescope's container.

`build_autograder_zip` writes a zip with, at its root (as Gradescope's
specification asks, https://gradescope-autograders.readthedocs.io/en/latest/specs/):

    setup.sh                    runs once, as root, when Gradescope builds the image
    run_autograder              runs once per submission, as root, in /autograder
    gencourse_autograder.json   the assignment, its tracks and their notebook names
    dist/<gencourse wheel>      this package, built from this repository
    solutions/<assignment>/     the source notebooks: the grader runs their setup cells, not the student's
    hidden/                     the hidden checks (autograder/hidden/ of the repository)

Gradescope unpacks the zip into /autograder/source and copies run_autograder to
/autograder/run_autograder. Both scripts make /autograder/source readable by
root only, so the grader (root) loads the hidden checks and the worker (an
unprivileged user id the grader borrows) cannot. `run` is what run_autograder
calls: it finds the submitted notebook, grades it under a supervisor process of
its own (as `gencourse grade` does) and always writes /autograder/results/results.json,
with an explanation and score 0 when grading itself failed. The root folder is
/autograder unless GENCOURSE_AUTOGRADER_ROOT names another, so the whole flow
runs in a temporary folder in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from .notebook import Notebook, _load
from .paths import project_root
from .results_json import VISIBILITIES, error_results, write_json, write_results_json

ROOT_ENV = "GENCOURSE_AUTOGRADER_ROOT"
PYTHON_ENV = "GENCOURSE_AUTOGRADER_PYTHON"
CONFIG_NAME = "gencourse_autograder.json"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
EXTRAS = {"tf": "tf", "torch": "torch"}     # track -> the package extra that installs its framework (CPU build)


class AutograderBuildError(ValueError):
    """The zip cannot be built; the message says why (the CLI prints it as an error)."""


# --------------------------------------------------------------------------- building the zip

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


# --------------------------------------------------------------------------- inside the container

def autograder_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get(ROOT_ENV) or "/autograder")


def find_submission(submission: Path, notebooks: dict[str, str]) -> tuple[Path, str]:
    """The submitted notebook and its assignment key; ValueError with a student-readable reason."""
    found = [p for p in sorted(submission.rglob("*.ipynb"))
             if ".ipynb_checkpoints" not in p.parts and "__MACOSX" not in p.parts and not p.name.startswith("._")]
    names = ", ".join(notebooks.values())
    if not found:
        raise ValueError(f"no notebook (.ipynb) was submitted; submit {names}")
    for key, name in notebooks.items():                  # the release's file name
        for p in found:
            if p.name == name:
                return p, key
    if len(notebooks) == 1:
        if len(found) == 1:
            return found[0], next(iter(notebooks))
        raise ValueError(f"several notebooks were submitted ({', '.join(p.name for p in found)}) "
                         f"and none is named {names}")
    # renamed notebook: tell the tracks apart by what the code imports
    for p in found:
        try:
            data = _load(p, p.name, Notebook(path=str(p)))
            cells = data.get("cells", []) if isinstance(data, dict) else []
        except (OSError, ValueError, IndexError, RecursionError):
            continue
        code = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
        for key in notebooks:
            track = key.rsplit("-", 1)[-1]
            marks = {"tf": ("import tensorflow", "from tensorflow", "import keras", "from keras"),
                     "torch": ("import torch", "from torch")}.get(track, ())
            if any(m in code for m in marks):
                return p, key
    raise ValueError(f"could not tell which notebook to grade among {', '.join(p.name for p in found)}; "
                     f"submit one of {names} under its released name")


def _student(root: Path) -> str:
    try:
        meta = json.loads((root / "submission_metadata.json").read_text())
        users = meta.get("users") or []
        if users:
            return str(users[0].get("email") or users[0].get("name") or "submission")
    except (OSError, ValueError, AttributeError):
        pass
    return "submission"


def run(root: str | os.PathLike | None = None) -> dict:
    """Grade /autograder/submission (or <root>/submission) and write results/results.json; returns it."""
    t0 = time.monotonic()
    root = autograder_root(root)
    results_path = root / "results" / "results.json"
    try:
        config = json.loads((root / "source" / CONFIG_NAME).read_text())
        notebooks = config["notebooks"]
    except (OSError, ValueError, KeyError) as e:
        print(f"gencourse autograder: cannot read {root / 'source' / CONFIG_NAME}: {e}", flush=True)
        return write_json(error_results("The autograder is misconfigured (its configuration file is missing). "
                                        "Please tell your instructor.", execution_time=time.monotonic() - t0),
                          results_path)
    try:
        path, key = find_submission(root / "submission", notebooks)
    except ValueError as e:
        print(f"gencourse autograder: {e}", flush=True)
        return write_json(error_results(str(e), execution_time=time.monotonic() - t0), results_path)
    print(f"gencourse autograder: grading {path.relative_to(root)} as {key}", flush=True)
    try:
        from .batch import grade_batch
        hidden = root / "source" / "hidden"
        solutions = root / "source" / "solutions"
        work = Path(tempfile.mkdtemp(prefix="gencourse-gradescope-"))      # private: mode 700
        reports = grade_batch([path], key, work, jobs=1, force=True, progress=False,
                                     hidden_dir=hidden if hidden.is_dir() else None,
                                     solutions_dir=solutions if solutions.is_dir() else None)
        if len(reports) != 1:
            raise RuntimeError(f"the batch returned {len(reports)} reports for one submission")
        report = next(iter(reports.values()))
        report.student = _student(root)
        shutil.rmtree(work, ignore_errors=True)
    except Exception as e:
        traceback.print_exc()
        return write_json(error_results(
            f"The grader failed on this submission ({type(e).__name__}: {e}). Your code was not judged; "
            "please tell your instructor.", execution_time=time.monotonic() - t0), results_path)
    results = write_results_json(report, results_path, execution_time=time.monotonic() - t0,
                                 hidden_visibility=config.get("hidden_visibility", "after_published"))
    print(f"gencourse autograder: {report.score:g} / {report.max_score:g} points; wrote {results_path}", flush=True)
    return results


# --------------------------------------------------------------------------- command line

def add_gradescope_command(subparsers) -> None:
    """`gencourse gradescope --assignment NAME [--out ZIP] ...`: write the autograder zip."""
    p = subparsers.add_parser("gradescope", help="build the Gradescope autograder zip of an assignment")
    p.add_argument("--assignment", required=True, help="assignment name (a folder of solutions/)")
    p.add_argument("--out", help="zip to write (default: gencourse-ASSIGNMENT-autograder.zip)")
    p.add_argument("--tracks", help="comma-separated tracks to accept, e.g. tf,torch (default: every solution notebook)")
    p.add_argument("--wheel", help="ship this gencourse wheel or sdist instead of building one from this repository")
    p.add_argument("--source", help="repository to build the wheel from and take solutions/ and autograder/hidden/ from")
    p.add_argument("--memory-mb", type=int, default=768,
                   help="the container's memory in Gradescope's settings (default 768, Gradescope's default); "
                        "refused when a track needs more (autograder/container.json)")
    p.add_argument("--hidden-visibility", choices=["after_published", "hidden", "after_due_date", "visible"],
                   default="after_published",
                   help="when students see the hidden checks' results (Gradescope's visibility; default after_published)")
    p.set_defaults(func=run_gradescope_command)


def run_gradescope_command(args) -> int:
    out = build_autograder_zip(args.assignment, args.out, wheel=args.wheel, source=args.source,
                               tracks=args.tracks.split(",") if args.tracks else None,
                               hidden_visibility=args.hidden_visibility, memory_mb=args.memory_mb)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    hidden = [n for n in names if n.startswith("hidden/")]
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(names)} files): "
          "upload it as the assignment's autograder on Gradescope (Configure Autograder > Zip file upload)")
    print(f"tracks: {', '.join(n.split('/')[-1] for n in names if n.startswith('solutions/'))}; "
          f"hidden checks: {', '.join(hidden) if hidden else 'none found (visible checks only)'}")
    with zipfile.ZipFile(out) as zf:
        keys = json.loads(zf.read(CONFIG_NAME))["notebooks"]
    source = Path(args.source) if args.source else project_root()
    print(f"container ({args.memory_mb} MB chosen; Gradescope's default is 768 MB and half a CPU):")
    for line in container_lines(source / "autograder", keys):
        print(f"  {line}")
    from .sandbox import DOCKER_CAPS, LAYERS, expected_layers
    got = expected_layers(DOCKER_CAPS)
    print("isolation in a plain Gradescope container (root with Docker's default capabilities, no CAP_SYS_ADMIN): "
          + ", ".join(LAYERS[x] for x in got) + "; not " + " or ".join(LAYERS[x] for x in LAYERS if x not in got))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencourse.grading.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="grade the submission in the autograder folder (what run_autograder calls)")
    r.add_argument("--root", help=f"the autograder folder (default ${ROOT_ENV} or /autograder)")
    add_gradescope_command(sub)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.root)
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
