"""`gencourse release`: the student notebooks, made by nbgrader's own `generate_assignment`.

An assignment folder `solutions/<name>/` holds one source, `<name>.md`: first
its nbgrader notebooks `<name>_<track>.ipynb` are generated from it
(`sources.py`) and written next to it, then nbgrader sees those notebooks and
nothing else (never the `.md`, which holds the solutions). A folder without
a `.md` gives nbgrader its hand-kept notebooks.

nbgrader reads `<root>/<source_directory>/<assignment>/` and writes
`<root>/<release_directory>/<assignment>/`, keeping a gradebook database in
the course root. To leave nothing stray in the repository (no gradebook.db,
no log), it runs in a temporary course root holding a copy of the sources,
with `CourseDirectory.source_directory = "solutions"` and
`release_directory = "assignments"`; the released folders are then copied
over `release/<assignment>/`. nbgrader runs `alembic` by name to set up its
database, so this Python's `bin/` goes first on PATH while it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .sources import SourceError, notebooks

SOURCE_DIRECTORY = "solutions"
RELEASE_DIRECTORY = "assignments"


class ReleaseError(RuntimeError):
    """nbgrader could not release an assignment; the message says which and why."""


@contextlib.contextmanager
def _environment(cwd: Path):
    """This interpreter's bin/ first on PATH, and a scratch working directory, for the duration."""
    old_path, old_cwd = os.environ.get("PATH", ""), os.getcwd()
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old_path])
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        os.environ["PATH"] = old_path


def assignments_in(source) -> list[str]:
    """The assignment folders of a source directory (those holding a `<name>.md` or a notebook)."""
    source = Path(source)
    if not source.is_dir():
        raise ReleaseError(f"{source}: no such folder of source notebooks")
    return sorted(d.name for d in source.iterdir()
                  if d.is_dir() and not d.name.startswith(".")
                  and ((d / f"{d.name}.md").is_file() or any(d.glob("*.ipynb"))))


def generate(root: Path, assignment: str) -> None:
    """nbgrader's generate_assignment of one assignment in the course root `root` (through its Python API)."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.source_directory = SOURCE_DIRECTORY
    config.CourseDirectory.release_directory = RELEASE_DIRECTORY
    config.CourseDirectory.assignment_id = assignment
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    coursedir = CourseDirectory(config=config)
    app = GenerateAssignment(coursedir=coursedir, config=config)
    app.force = True
    app.create_assignment = True
    try:
        app.start()
    except Exception as e:  # nbgrader raises its own NbGraderException (and others) with a log
        raise ReleaseError(f"nbgrader generate_assignment failed for {assignment!r}: {type(e).__name__}: {e}") from e


def stage(folder: Path, staged: Path, write_sources: bool = True) -> None:
    """Put what nbgrader may see of `folder` into `staged`: the notebooks generated from its `.md`
    (also written into `folder` when `write_sources`), or else its hand-kept notebooks."""
    staged.mkdir(parents=True)
    md = folder / f"{folder.name}.md"
    if not md.is_file():
        for nb in sorted(folder.glob("*.ipynb")):
            shutil.copy(nb, staged / nb.name)
        return
    for name, text in notebooks(md).items():
        for target in [staged, folder] if write_sources else [staged]:
            (target / name).write_text(text, encoding="utf-8")


def release(source="solutions", release="assignments", assignment=None, write_sources=True) -> list[Path]:
    """Release `assignment` (every one when None) from `source` into `release`; the notebooks written.

    Each released `release/<assignment>/` is replaced as a whole, so a
    notebook removed from the source disappears from the release too.
    `write_sources=False` leaves `source/` as it is (the tests' fresh release).
    """
    source, release_dir = Path(source).resolve(), Path(release).resolve()
    names = [assignment] if assignment else assignments_in(source)
    for name in names:
        if not (source / name).is_dir():
            raise ReleaseError(f"{source / name}: no such assignment folder")
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="gencourse-release-") as tmp:
        root = Path(tmp)
        for name in names:
            stage(source / name, root / SOURCE_DIRECTORY / name, write_sources)
        with _environment(root):
            for name in names:
                generate(root, name)
        for name in names:
            out = root / RELEASE_DIRECTORY / name
            if not out.is_dir():
                raise ReleaseError(f"nbgrader wrote nothing for {name!r}")
            target = release_dir / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(out, target)
            written += sorted(target.glob("*.ipynb"))
    return written


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gencourse.grading.release",
                                     description="student notebooks from the source notebooks (nbgrader)")
    parser.add_argument("assignment", nargs="?", help="one assignment folder (default: all)")
    parser.add_argument("--source", default=SOURCE_DIRECTORY)
    parser.add_argument("--release", default=RELEASE_DIRECTORY)
    args = parser.parse_args(argv)
    try:
        for path in release(args.source, args.release, args.assignment):
            print(path)
    except (ReleaseError, SourceError) as e:
        print(f"gencourse release: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
