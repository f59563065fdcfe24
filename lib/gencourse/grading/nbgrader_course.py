"""`gencourse nbgrader init DIR`: an nbgrader course folder on which nbgrader's own commands run.

nbgrader finds its settings in the `nbgrader_config.py` of the folder it runs in;
`generate_assignment`, `autograde`, `generate_feedback` and the formgrader (Jupyter
started in DIR) then work as for any course. Each track is an nbgrader assignment of
its own, named as the grader's key (`NAME-TRACK`), with its one notebook: a student
submits one track, so the assignment's maximum score is that notebook's (one assignment
holding both tracks would count both notebooks' points). The folder gets:

    DIR/nbgrader_config.py          the course directories, the gradebook, the hidden checks' folder
    DIR/source/NAME-TRACK/          the generated source notebook NAME_TRACK.ipynb (never the .md)
    DIR/autograder/hidden/NAME.py   the hidden checks the source notebooks' hidden tests call

The hidden checks are the instructor's: keep DIR away from students, as nbgrader's
source/ and gradebook already must be.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from .checklist import hidden_file
from .paths import default_hidden_dir, solutions_candidates
from .registry import get_assignment

CONFIG = '''"""nbgrader's settings for this course folder (written by `gencourse nbgrader init`)."""
import os
from pathlib import Path

here = Path(__file__).resolve().parent
c = get_config()  # noqa: F821 - nbgrader's config loader defines it
c.CourseDirectory.root = str(here)
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = f"sqlite:///{here / 'gradebook.db'}"
# One nbgrader assignment per track, named as gencourse's assignment key: `gencourse grade
# --assignment KEY --gradebook gradebook.db --nbgrader-assignment KEY` writes into the same one.
c.CourseDirectory.db_assignments = [{assignments}]
# The source notebooks' hidden tests (gencourse.grading.run_hidden) read the checks from here;
# autograde's kernels inherit the variable.
os.environ.setdefault("GENCOURSE_HIDDEN_DIR", str(here / "autograder" / "hidden"))
'''


class CourseError(ValueError):
    """The course folder cannot be written as asked; the message says why."""


def init_course(folder, assignments=(), *, solutions=None, hidden=None, force=False) -> list[str]:
    """Write the course folder `folder` for `assignments` (names; default every one in the solutions
    folder); the nbgrader assignments (NAME-TRACK) it holds."""
    folder = Path(folder)
    source_root = next((d for d in solutions_candidates(solutions) if d.is_dir()), None)
    if source_root is None:
        raise CourseError("no solutions folder with the source notebooks: pass --solutions DIR")
    names = list(assignments) or sorted(d.name for d in source_root.iterdir() if any(d.glob(f"{d.name}_*.ipynb")))
    hidden_dir = Path(hidden) if hidden else default_hidden_dir()
    plan = []
    for name in names:
        notebooks = sorted((source_root / name).glob(f"{name}_*.ipynb"))
        if not notebooks:
            raise CourseError(f"no source notebooks {name}_<track>.ipynb in {source_root / name} "
                              f"(run `gencourse release {name}` first)")
        checks = hidden_file(get_assignment(f"{name}-{notebooks[0].stem.rsplit('_', 1)[1]}"), hidden_dir)
        if checks is None:
            raise CourseError(f"no hidden checks for {name} in {hidden_dir}: pass --hidden DIR")
        plan.append((name, notebooks, checks))
    config = CONFIG.replace("{assignments}", ", ".join(
        f'{{"name": "{name}-{nb.stem.rsplit("_", 1)[1]}"}}' for name, notebooks, _ in plan for nb in notebooks))
    target = folder / "nbgrader_config.py"
    if target.is_file() and target.read_text() != config and not force:
        raise CourseError(f"{target} exists and differs from what init writes: pass --force to replace it")
    written = []
    for name, notebooks, checks in plan:
        for nb in notebooks:
            key = f"{name}-{nb.stem.rsplit('_', 1)[1]}"
            (folder / "source" / key).mkdir(parents=True, exist_ok=True)
            shutil.copy2(nb, folder / "source" / key / nb.name)
            written.append(key)
        (folder / "autograder" / "hidden").mkdir(parents=True, exist_ok=True)
        copy = folder / "autograder" / "hidden" / checks.name
        if not (copy.is_file() and filecmp.cmp(checks, copy, shallow=False)):
            shutil.copy2(checks, copy)
    target.write_text(config)
    return written


def add_command(subparsers) -> None:
    p = subparsers.add_parser("nbgrader", help="an nbgrader course folder for nbgrader's own commands")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="write DIR/nbgrader_config.py and the source notebooks, one "
                                           "nbgrader assignment per track",
                              description=__doc__.split("\n\n")[1])
    init.add_argument("folder", metavar="DIR", help="the course folder (made when missing)")
    init.add_argument("--assignment", action="append", default=[], metavar="NAME",
                      help="an assignment to add (repeatable; default: every one in the solutions folder)")
    init.add_argument("--solutions", help="folder of the generated source notebooks (default solutions/)")
    init.add_argument("--hidden", help="folder of the hidden checks (default autograder/hidden)")
    init.add_argument("--force", action="store_true", help="replace an nbgrader_config.py that differs")
    init.set_defaults(func=run_init)


def run_init(args) -> int:
    keys = init_course(args.folder, args.assignment, solutions=args.solutions, hidden=args.hidden,
                       force=args.force)
    print(f"{args.folder}/nbgrader_config.py: nbgrader assignments {', '.join(keys)}; "
          f"next: (cd {args.folder} && nbgrader generate_assignment {keys[0]})")
    return 0
