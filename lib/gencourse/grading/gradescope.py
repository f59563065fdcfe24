"""The Gradescope autograder: what runs inside Gradescope's container, and the `gencourse gradescope` command.

Gradescope unpacks the zip (`gradescope_zip.build_autograder_zip`) into
/autograder/source and copies run_autograder to /autograder/run_autograder.
`run` is what run_autograder calls: it finds the submitted notebook, grades it
under a supervisor process of its own (as `gencourse grade` does) and always
writes /autograder/results/results.json, with an explanation and score 0 when
grading itself failed. The root folder is /autograder unless
GENCOURSE_AUTOGRADER_ROOT names another, so the whole flow runs in a temporary
folder in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from .gradescope_zip import CONFIG_NAME, ROOT_ENV, build_autograder_zip, container_lines
from .notebook import Notebook, _load
from .paths import project_root
from .results_json import error_results, write_json, write_results_json


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
