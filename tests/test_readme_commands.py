"""Every command block of README.md and autograder/README.md, run as a user types it.

The blocks run in order, each document in a fresh folder laid out like the
repository (the venv, the notebooks, the Makefile), through the installed
`gencourse` entry point in a subprocess, under GENCOURSE_QUICK=1 (the smoke-test
setting the README documents) and with HOME holding the data folders the
commands name (~/mnist, ~/monet2photo, ~/gan-getting-started), written here.
Each command is checked for what the README promises it writes or prints, not
only for its exit status. `test_every_command_is_checked` fails when a README
shows a command this module has no check for, or a check matches no command,
so the two cannot drift apart.

Two commands are not run as typed: `make test` is this suite (the check is that
.ci/run calls it), and a benchmark takes minutes to hours, so `--help` is
appended (their figures come from real runs, recorded in docs/results.md).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
DOCS = ("README.md", "autograder/README.md")
FENCE = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


@dataclass
class Command:
    doc: str
    line: str                          # as the README shows it, continuation lines joined
    block: int = 0                     # which ```bash block of the document


def commands(doc: str) -> list[Command]:
    """The commands of a document's ```bash blocks, in order, comments dropped."""
    out = []
    for b, block in enumerate(FENCE.findall((ROOT / doc).read_text())):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(Command(doc, re.sub(r"\s+", " ", line), b))
    return out


# --------------------------------------------------------------------------- what each command promises

def files(folder: Path, names) -> None:
    missing = [n for n in names if not (folder / n).is_file()]
    assert not missing, f"{folder}: {missing} not written (has {sorted(p.name for p in folder.glob('*'))})"


def metrics(folder: Path, *keys) -> dict:
    m = json.loads((folder / "metrics.json").read_text())
    absent = [k for k in keys if k not in m]
    assert not absent, f"{folder}/metrics.json lacks {absent}"
    return m


VAE_FIGURES = ["loss_curves.png", "reconstructions.png", "latent_scatter.png", "latent_ranges.txt", "manifold.png",
               "inputs_vs_outputs.png", "metrics.json"]
STYLEGAN_FIGURES = ["samples.png", "noise.png", "style_mixing_coarse.png", "style_mixing_middle.png",
                    "style_mixing_fine.png", "truncation.png", "editing.png", "loss_curves.png", "metrics.json"]
CYCLEGAN_FIGURES = ["translations.png", "loss_curves.png", "metrics.json"]


def check_demo(work, out):
    for model in ("vae", "cvae"):
        for track in ("tf", "torch"):
            assert re.search(rf"^{model}\s+{track}\s+\d+\.\d", out, re.M), f"no table row for {model}/{track}"
            folder = work / "runs" / "demo" / f"{model}-{track}"
            files(folder, VAE_FIGURES + (["digits_by_class.png"] if model == "cvae" else []))
            assert f"{folder.relative_to(work)}/: " in out, "the demo does not say where the run's files are"
    assert "figures and metrics.json of each run" in out


def check_make_test(work, out):
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def check_vae(model, track, out_dir, data=None):
    def check(work, out):
        folder = work / out_dir
        files(folder, VAE_FIGURES + (["digits_by_class.png"] if model == "cvae" else []))
        m = metrics(folder, "test_neg_elbo", "test_recon", "test_kl", "history", "latent_ranges", "test_neg_iwae",
                    "test_neg_elbo_bits_per_dim", "test_neg_iwae_bits_per_dim")
        assert m["model"] == model and m["track"] == track
        if model == "cvae":
            assert 0.0 <= m["generation_accuracy"] <= 1.0
        if data:
            assert data in m["data"], m["data"]
        assert f"{model}/{track}: held-out neg-ELBO" in out
    return check


def check_cyclegan(track, out_dir, source):
    def check(work, out):
        folder = work / out_dir
        files(folder, CYCLEGAN_FIGURES)
        m = metrics(folder, "cycle_error_A", "cycle_error_B", "history")
        assert m["track"] == track and source in m["data"], m["data"]
        if source == "digits":
            assert 0.0 <= m["label_preservation_AB"] <= 1.0 and 0.0 <= m["label_preservation_BA"] <= 1.0
        assert f"cyclegan/{track}: cycle error" in out
    return check


def check_stylegan(track, compare=()):
    def check(work, out):
        folder = work / "runs" / f"stylegan-{track}"
        files(folder, STYLEGAN_FIGURES)
        assert list((folder / "progress").glob("epoch_*.png"))
        m = metrics(folder, "frechet_distance", "frechet_floor", "class_fractions", "noise", "editing")
        assert abs(sum(m["class_fractions"]) - 1.0) < 1e-6
        for run in compare:
            assert run in m["compare"], m.get("compare")
        assert f"stylegan/{track}: Frechet distance" in out
    return check


def check_stylegan_pretrained(work, out):
    folder = work / "runs" / "stylegan-pretrained-tf"
    files(folder, [f for f in STYLEGAN_FIGURES if f != "loss_curves.png"])
    m = metrics(folder, "frechet_distance", "frechet_floor", "class_fractions", "pretrained")
    assert m["track"] == "tf" and not (folder / "checkpoint").exists()
    assert "stylegan/tf: Frechet distance" in out


def check_mixing(work, out):
    folder = work / "runs" / "stylegan-mixing"
    files(folder, ["table.txt", "mixing.json"])
    table = json.loads((folder / "mixing.json").read_text())
    assert set(table["rows"]) == {"0.0", "0.5", "0.9", "1.0"} and table["paper"]
    assert "floor (real train vs test digits)" in out


def check_release(work, out):
    for track in ("tf", "torch"):
        for folder in ("solutions", "assignments"):
            made, committed = work / folder / "vae" / f"vae_{track}.ipynb", ROOT / folder / "vae" / f"vae_{track}.ipynb"
            assert json.loads(made.read_text()) == json.loads(committed.read_text()), f"{folder}: not as committed"
    assert not list((work / "assignments" / "vae").glob("*.md")), "the source (with solutions) reached the release"


def check_grade(out_dir, students, *, again=None):
    def check(work, out):
        folder = work / out_dir
        # the solution's score, as the container benchmark recorded it: what an untouched release is out of
        total = json.loads((ROOT / "autograder" / "container.json").read_text())["needs"]["vae-tf"]["max_score"]
        for s in students:
            files(folder / s, ["report.json", "results.json", "feedback.txt"])
            assert re.search(rf"^{s}\s+0\.00\s+{total:g}\b", out, re.M), f"no score line for {s} (0 of {total:g})"
            assert json.loads((folder / s / "report.json").read_text())["assignment"] == "vae-tf"
        rows = list(csv.DictReader(open(folder / "grades.csv")))
        assert sorted(r["student"] for r in rows) == sorted(students)
        assert "grades in" in out and "results.json and feedback.txt" in out
        if again is not None:
            stamps = {s: (folder / s / "report.json").stat().st_mtime_ns for s in students}
            previous = STAMPS.get((work, out_dir))
            if previous is not None:
                assert (stamps == previous) == (again == "skips"), f"report.json rewritten: {again}"
            STAMPS[(work, out_dir)] = stamps
    return check


STAMPS: dict = {}


def check_check(key):
    """An untouched release: every visible check printed, failing as not implemented, and the total."""
    def check(work, out):
        from gencourse.grading import get_assignment

        visible = [c for c in get_assignment(key).checks if c.visible]
        assert f"total: 0 / {sum(c.points for c in visible):g} points" in out
        assert out.count("FAIL [0/") == len(visible) and out.count("not implemented yet") == len(visible)
    check.exit_code = 1                # points lost: `gencourse check` says so in its status, for hooks and CI
    return check


def check_gradescope(zip_name):
    def check(work, out):
        with zipfile.ZipFile(work / zip_name) as zf:
            names = zf.namelist()
        assert {"setup.sh", "run_autograder", "gencourse_autograder.json"} <= set(names)
        assert any(n.startswith("dist/gencourse-") for n in names) and any(n.startswith("hidden/") for n in names)
        assert f"wrote {zip_name}" in out
        assert ("isolation in a plain Gradescope container (root with Docker's default capabilities, no "
                "CAP_SYS_ADMIN): an unprivileged user of its own, a seccomp filter; not its own mount namespace "
                "or its own network namespace") in out
    return check


def check_gradebook(work, out):
    assert "gradebook: " in out and "autograded cell score(s) for 1 student(s)" in out
    files(work / "grades" / "vae-tf" / "nb-student", ["report.json", "results.json", "feedback.txt"])


def check_course_folder(work, out):
    course = work / "course"
    files(course, ["nbgrader_config.py", "autograder/hidden/vae.py"])
    for track in ("tf", "torch"):
        assert json.loads((course / "source" / f"vae-{track}" / f"vae_{track}.ipynb").read_text()) == \
            json.loads((ROOT / "solutions" / "vae" / f"vae_{track}.ipynb").read_text())
    assert "nbgrader assignments vae-tf, vae-torch" in out


def check_course_release(work, out):
    made = json.loads((work / "course" / "release" / "vae-tf" / "vae_tf.ipynb").read_text())
    assert made == json.loads((ROOT / "assignments" / "vae" / "vae_tf.ipynb").read_text()), "not the student release"


def check_autograde(work, out):
    """nbgrader's own autograde and feedback on the folder; the assignment's maximum is one track's."""
    from nbgrader.api import Gradebook

    course = work / "course"
    files(course / "autograded" / "nb-student" / "vae-tf", ["vae_tf.ipynb"])
    files(course / "feedback" / "nb-student" / "vae-tf", ["vae_tf.html"])
    source = json.loads((course / "source" / "vae-tf" / "vae_tf.ipynb").read_text())
    points = sum(c["metadata"]["nbgrader"].get("points", 0) for c in source["cells"]
                 if c["metadata"].get("nbgrader", {}).get("grade"))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assignment = gb.find_assignment("vae-tf")
        assert [n.name for n in assignment.notebooks] == ["vae_tf"] and assignment.max_score == points > 0
        assert gb.find_submission("vae-tf", "nb-student").score == 0      # an untouched release


def check_autograder_run(work, out):
    results = json.loads((work / "try" / "results" / "results.json").read_text())
    assert results["score"] == 0 and results["tests"]
    assert all("not implemented yet" in t["output"] for t in results["tests"] if "hidden" not in t.get("tags", []))


def nothing_to_check(work, out):
    """A shell step of a recipe (mkdir, cp, unzip): the recipe's last command checks the result."""


def check_help(work, out):
    assert "usage:" in out


EXPECT = [   # (document, pattern the command matches, its check)
    ("README.md", r"^make demo$", check_demo),
    ("README.md", r"^make test$", check_make_test),
    ("README.md", r"^gencourse check assignments/vae/vae_torch\.ipynb$", check_check("vae-torch")),
    ("README.md", r"^gencourse release vae$", check_release),
    ("README.md", r"^gencourse grade submitted/ --assignment vae-tf --out grades/vae-tf --jobs 2$",
     check_grade("grades/vae-tf", ["ada", "alan"])),
    ("README.md", r"^gencourse gradescope --assignment vae$", check_gradescope("gencourse-vae-autograder.zip")),
    ("README.md", r"^gencourse train vae --track tf$", check_vae("vae", "tf", "runs/vae-tf")),
    ("README.md", r"^gencourse train cvae --track torch$", check_vae("cvae", "torch", "runs/cvae-torch")),
    ("README.md", r"^gencourse train vae --track torch --epochs 5 .*--data-dir ~/mnist --out runs/vae-torch",
     check_vae("vae", "torch", "runs/vae-torch", data="mnist")),
    ("README.md", r"^gencourse train cyclegan --track torch$", check_cyclegan("torch", "runs/cyclegan-torch", "digits")),
    ("README.md", r"^gencourse train cyclegan --track tf --dataset folder:~/monet2photo --image-size 128$",
     check_cyclegan("tf", "runs/cyclegan-tf", "monet2photo")),
    ("README.md", r"^gencourse train cyclegan --dataset kaggle:~/gan-getting-started .*--out runs/monet --resume$",
     check_cyclegan("tf", "runs/monet", "gan-getting-started")),
    ("README.md", r"^gencourse train stylegan --track torch$", check_stylegan("torch")),
    ("README.md", r"^gencourse train stylegan --track tf --mixing-prob 0\.5 .*--resume$", check_stylegan("tf")),
    ("README.md", r"^gencourse train stylegan --compare runs/vae-tf --compare runs/cvae-torch$",
     check_stylegan("tf", compare=("runs/vae-tf", "runs/cvae-torch"))),
    ("README.md", r"^gencourse train stylegan --pretrained --track tf$", check_stylegan_pretrained),
    ("README.md", r"^gencourse experiment stylegan-mixing --quick$", check_mixing),
    ("README.md", r"^python benchmarks/(vae|cyclegan|stylegan|grading|notebooks|platforms)\.py$", check_help),
    ("autograder/README.md", r"^gencourse release vae$", check_release),
    ("autograder/README.md", r"^gencourse grade submitted/ --assignment vae-tf --out grades/vae-tf --jobs 2$",
     check_grade("grades/vae-tf", ["ada", "alan"], again="first")),
    ("autograder/README.md", r"^gencourse grade submitted/ --assignment vae-tf --out grades/vae-tf --jobs 2 #again$",
     check_grade("grades/vae-tf", ["ada", "alan"], again="skips")),
    ("autograder/README.md", r"^gencourse grade submitted/ --assignment vae-tf --out grades/vae-tf --jobs 2 --force$",
     check_grade("grades/vae-tf", ["ada", "alan"], again="regrades")),
    ("autograder/README.md", r"^gencourse grade submitted/ada/vae/vae_tf\.ipynb --assignment vae-tf --out grades/ada$",
     check_grade("grades/ada", ["ada"])),
    ("autograder/README.md", r"^gencourse check assignments/vae/vae_tf\.ipynb$", check_check("vae-tf")),
    ("autograder/README.md", r"^gencourse nbgrader init course --assignment vae$", check_course_folder),
    ("autograder/README.md", r"^\(cd course && nbgrader generate_assignment vae-tf --force\)$", check_course_release),
    ("autograder/README.md", r"^\(cd course && nbgrader autograde vae-tf && nbgrader generate_feedback vae-tf\)$",
     check_autograde),
    ("autograder/README.md", r"^gencourse grade course/submitted --assignment vae-tf --out grades/vae-tf "
                             r"--gradebook course/gradebook\.db --nbgrader-assignment vae-tf$", check_gradebook),
    ("autograder/README.md", r"^gencourse gradescope --assignment vae --out gencourse-vae-autograder\.zip$",
     check_gradescope("gencourse-vae-autograder.zip")),
    ("autograder/README.md", r"^mkdir -p try/source try/submission try/results$", nothing_to_check),
    ("autograder/README.md", r"^python -m zipfile -e gencourse-vae-autograder\.zip try/source$", nothing_to_check),
    ("autograder/README.md", r"^cp try/source/run_autograder try/ && cp assignments/vae/vae_torch\.ipynb "
                             r"try/submission/$", nothing_to_check),
    ("autograder/README.md", r"^GENCOURSE_AUTOGRADER_ROOT=try GENCOURSE_AUTOGRADER_PYTHON=\.venv/bin/python bash "
                             r"try/run_autograder$", check_autograder_run),
]


def expectation(cmd: Command, seen: list):
    """The check of `cmd`; a repeated command line takes the next entry of its pattern."""
    matches = [i for i, (doc, pattern, _) in enumerate(EXPECT)
               if doc == cmd.doc and re.search(pattern, key_of(cmd, seen))]
    return matches[0] if matches else None


def key_of(cmd: Command, seen: list) -> str:
    """The command line, marked `#again` when the same line ran before in the document."""
    return cmd.line + (" #again" if cmd.line in seen else "")


def test_every_command_is_checked():
    unchecked, used = [], set()
    for doc in DOCS:
        seen = []
        for cmd in commands(doc):
            i = expectation(cmd, seen)
            if i is None:
                unchecked.append(f"{doc}: {cmd.line}")
            else:
                used.add(i)
            seen.append(cmd.line)
    assert not unchecked, "commands the README shows and no test runs: " + "; ".join(unchecked)
    stale = [f"{EXPECT[i][0]}: {EXPECT[i][1]}" for i in range(len(EXPECT)) if i not in used]
    assert not stale, "checks of commands the README no longer shows: " + "; ".join(stale)


def test_the_gencourse_options_the_readme_uses_exist():
    """Every --option of a gencourse command in the READMEs is one its parser knows (the runs prove it
    works; this names a misspelt or removed option even where a run would fail later)."""
    from gencourse.cli import build_parser

    parser = build_parser()
    for doc in DOCS:
        for cmd in commands(doc):
            words = shlex.split(cmd.line)
            if "gencourse" not in words[0]:
                continue
            sub = [w for w in words[1:] if not w.startswith("-")][:2]
            action = parser._subparsers._group_actions[0].choices[sub[0]]
            if sub[0] in ("train", "experiment", "nbgrader"):
                action = action._subparsers._group_actions[0].choices[sub[1]]
            known = {o for a in action._actions for o in a.option_strings}
            wrong = [w.split("=")[0] for w in words if w.startswith("--") and w.split("=")[0] not in known]
            assert not wrong, f"{doc}: {cmd.line}: unknown options {wrong}"


# --------------------------------------------------------------------------- a user's folder

def write_images(folder: Path, n: int, rng, size=(40, 48)) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.jpg")


def user_folder(tmp: Path) -> tuple[Path, dict]:
    """A checkout as a user has it after `make install`, and the environment of their shell."""
    from test_domains import kaggle_record, write_tfrecord

    work = tmp / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(VENV)
    for name in ("solutions", "assignments"):
        shutil.copytree(ROOT / name, work / name)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, work / name)
    stamp = VENV / ".installed-stamp"               # `make install` made the venv: make must not redo it here
    assert stamp.is_file(), f"{VENV} was not made by `make install` (no {stamp.name}): run make test"
    os.utime(work / "pyproject.toml", (stamp.stat().st_mtime - 1,) * 2)
    (work / "autograder").symlink_to(ROOT / "autograder")
    (work / "benchmarks").symlink_to(ROOT / "benchmarks")
    # submissions: nbgrader's layout, two untouched releases (fast to grade; every output is written)
    for student in ("ada", "alan"):
        target = work / "submitted" / student / "vae"
        target.mkdir(parents=True)
        shutil.copy(ROOT / "assignments" / "vae" / "vae_tf.ipynb", target / "vae_tf.ipynb")
    (work / "course" / "submitted" / "nb-student" / "vae-tf").mkdir(parents=True)
    shutil.copy(ROOT / "assignments" / "vae" / "vae_tf.ipynb", work / "course" / "submitted" / "nb-student" / "vae-tf")
    home = tmp / "home"
    shutil.copytree(ROOT.parent / "shared" / "data" / "mnist", home / "mnist")
    rng = np.random.default_rng(0)
    for split in ("trainA", "trainB", "testA", "testB"):
        write_images(home / "monet2photo" / split, 4, rng)
    for name in ("monet", "photo"):
        (home / "gan-getting-started" / f"{name}_tfrec").mkdir(parents=True)
        records = [kaggle_record(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), f"{name}{i}", name)
                   for i in range(3)]
        write_tfrecord(home / "gan-getting-started" / f"{name}_tfrec" / f"{name}00-3.tfrec", records)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCOURSE_", "PYTEST_", "COV_"))}
    env.update(HOME=str(home), GENCOURSE_QUICK="1", PATH=f"{VENV / 'bin'}:{env.get('PATH', '')}",
               VIRTUAL_ENV=str(VENV), OMP_NUM_THREADS="1", MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2")
    return work, env


# Commands that need what an earlier block of the same document wrote, run first when a block runs alone.
NEEDS = [(r"--compare runs/vae-tf --compare runs/cvae-torch", ["gencourse train vae --track tf",
                                                              "gencourse train cvae --track torch"])]


def run_document(doc: str, tmp_path: Path, block: int | None = None) -> None:
    """The document's commands in order (or one block's, after what it needs), each checked."""
    work, env = user_folder(tmp_path)
    seen, timings = [], []
    todo = [c for c in commands(doc) if block is None or c.block == block]
    if block is not None:
        needed = [line for c in todo for pattern, lines in NEEDS if re.search(pattern, c.line) for line in lines]
        todo = [Command(doc, line, block) for line in needed if line not in [c.line for c in todo]] + todo
    for cmd in todo:
        i = expectation(cmd, seen)
        assert i is not None, f"{doc}: no check for {cmd.line}"
        check = EXPECT[i][2]
        line = cmd.line
        if check is check_make_test:
            check(work, "")
            seen.append(cmd.line)
            continue
        if check is check_help:
            line += " --help"
        start = time.monotonic()
        done = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True,
                              timeout=900)
        timings.append((time.monotonic() - start, cmd.line))
        out = done.stdout + done.stderr
        want = getattr(check, "exit_code", 0)
        assert done.returncode == want, f"{doc}: `{cmd.line}` exited {done.returncode}, not {want}:\n{out[-3000:]}"
        check(work, out)
        seen.append(cmd.line)
    for seconds, line in timings:
        print(f"{seconds:6.1f} s  {line}")


# The README's blocks are independent (each runs in a fresh folder, after what it needs), so they spread over
# the test workers; autograder/README.md is one recipe, run in order.
RUNS = [("README.md", b) for b in sorted({c.block for c in commands("README.md")})] + [("autograder/README.md", None)]


@pytest.mark.slow
@pytest.mark.parametrize("doc, block", RUNS, ids=[f"{d}-{'all' if b is None else b}" for d, b in RUNS])
def test_document_commands_do_what_they_say(doc, block, tmp_path):
    run_document(doc, tmp_path, block)
