"""What grading hands out: Gradescope's results.json, feedback files, the grades CSV, nbgrader's gradebook."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gencourse.grading import CheckResult, Report
from gencourse.grading.grades_csv import append_csv, grade_row, write_grades_csv
from gencourse.grading.report import feedback_text, write_feedback, write_outputs
from gencourse.grading.results_json import error_results, results_json, validate_results, write_results_json

ISOLATION = ["own session and process group", "CPU 120 s", "address space 6144 MB",
             "unprivileged user", "no network"]


@pytest.fixture(autouse=True)
def made_up_reports_keep_their_order(monkeypatch):
    """These reports are made up under the key 'vae-tf': keep their own check order even
    where another test in this process has registered the real VAE assignment."""
    from gencourse.grading import REGISTRY

    monkeypatch.delitem(REGISTRY, "vae-tf", raising=False)


def make_report(student="alice", scores=None, notes=()) -> Report:
    """Two parts, three visible checks and one hidden; `scores` overrides the earned points."""
    spec = [  # name, part, points, visible, message
        ("KL matches the oracle", "kl", 2.0, True, "KL of 5 random posteriors within 1e-5 of the oracle"),
        ("KL is zero at the prior", "kl", 1.0, True, "KL(N(0,1) || N(0,1)) = 0"),
        ("sampling has the right shape", "sampling", 2.0, True, "z has shape (8, 2)"),
        ("sampling follows mu + sigma * eps", "sampling", 3.0, False, "the hidden seeds agree"),
    ]
    scores = scores if scores is not None else [p for _, _, p, _, _ in spec]
    results = [CheckResult(name=n, part=part, points=p, score=s, message=m, visible=v)
               for (n, part, p, v, m), s in zip(spec, scores)]
    return Report(student=student, assignment="vae-tf", results=results, isolation=list(ISOLATION),
                  notes=list(notes))


def partial_report():
    return make_report("bob", scores=[2.0, 0.0, 1.0, 1.5],
                       notes=["cell 'decoder' is missing"])


# --------------------------------------------------------------------------- results.json

@pytest.mark.parametrize("report", [make_report(), make_report("zero", [0, 0, 0, 0]), partial_report()],
                         ids=["full", "zero", "partial"])
def test_results_json_follows_gradescope_spec(tmp_path, report):
    path = tmp_path / "results" / "results.json"
    written = write_results_json(report, path, execution_time=12.3)
    data = json.loads(path.read_text())
    assert data == written
    assert validate_results(data) == []
    assert isinstance(data["score"], float)
    assert data["score"] == pytest.approx(report.score)
    assert sum(t["score"] for t in data["tests"]) == pytest.approx(data["score"])
    assert data["execution_time"] == 13 and isinstance(data["execution_time"], int)
    assert data["visibility"] == "visible" and data["stdout_visibility"] == "hidden"
    assert "own session and process group" in data["output"] and "no network" in data["output"]
    assert len(data["tests"]) == 4
    for t, r in zip(data["tests"], report.results):
        assert set(t) >= {"score", "max_score", "name", "number", "output", "visibility"}
        assert isinstance(t["score"], float) and isinstance(t["max_score"], float)
        assert 0 <= t["score"] <= t["max_score"]
        assert r.name in t["name"] and t["output"] == r.message
        assert t["visibility"] in ("visible", "after_published")
    assert [t["number"] for t in data["tests"]] == ["1.1", "1.2", "2.1", "2.2"]


def test_hidden_checks_visibility_option():
    report = partial_report()
    published = results_json(report)
    assert [t["visibility"] for t in published["tests"]] == ["visible", "visible", "visible", "after_published"]
    hidden = results_json(report, hidden_visibility="hidden")
    assert [t["visibility"] for t in hidden["tests"]] == ["visible", "visible", "visible", "hidden"]
    assert validate_results(hidden) == []
    # the top-level output is shown before publication: it must not give away the hidden score
    assert "3 / 5 points" in hidden["output"]            # visible: 2 + 0 + 1 of 2 + 1 + 2
    assert "1 hidden check(s)" in hidden["output"]
    assert "4.5" not in hidden["output"]
    assert "cell 'decoder' is missing" in hidden["output"]
    with pytest.raises(ValueError):
        results_json(report, hidden_visibility="later")
    # a note that names a hidden check stays out of the output shown before publication
    report.notes.append("grader error: the judge of 'sampling follows mu + sigma * eps' raised KeyError")
    assert "mu + sigma" not in results_json(report)["output"]
    assert "mu + sigma" in feedback_text(report)


def test_validator_catches_what_gradescope_rejects():
    good = results_json(make_report())
    assert validate_results(good) == []
    bad = json.loads(json.dumps(good))
    bad["score"] = "10"
    bad["tests"][0]["visibility"] = "secret"
    bad["tests"][1]["score"] = 99.0
    bad["stdout_visibility"] = "always"
    problems = " | ".join(validate_results(bad))
    assert "score must be a number" in problems
    assert "tests[0].visibility" in problems
    assert "exceeds max_score" in problems
    assert "stdout_visibility" in problems
    off = json.loads(json.dumps(good))
    off["score"] += 1
    assert any("differs from the sum" in p for p in validate_results(off))
    assert validate_results(error_results("no notebook was submitted")) == []


def test_scores_are_rounded_consistently():
    thirds = Report("carol", "vae-tf", [CheckResult(f"c{i}", "kl", 1.0, 1 / 3, "", True) for i in range(3)],
                    ISOLATION)
    data = results_json(thirds)
    assert validate_results(data) == []
    assert data["score"] == pytest.approx(1.0, abs=1e-3)


# --------------------------------------------------------------------------- feedback

def test_feedback_lists_every_check_with_status_and_total(tmp_path):
    path = write_feedback(partial_report(), tmp_path / "bob" / "feedback.txt")
    text = path.read_text()
    assert "no network" in text and "CPU 120 s" in text          # which isolation applied
    assert "cell 'decoder' is missing" in text
    kl = text.index("Part kl: 2 / 3 points")
    sampling = text.index("Part sampling: 2.5 / 5 points")
    assert kl < sampling
    assert "[PASS] 2 / 2  KL matches the oracle" in text
    assert "[FAIL] 0 / 1  KL is zero at the prior" in text
    assert "[partial] 1 / 2  sampling has the right shape" in text
    assert "(hidden check)" in text
    for r in partial_report().results:
        assert r.message in text
    assert text.rstrip().endswith("Total: 4.5 / 8 points (56 %)")
    student_view = feedback_text(partial_report(), include_hidden=False)
    assert "mu + sigma" not in student_view and "Total: 3 / 5 points" in student_view


# --------------------------------------------------------------------------- CSV

def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grades_csv_columns_and_resume(tmp_path):
    path = tmp_path / "grades.csv"
    a, b = make_report("alice"), partial_report()
    append_csv([grade_row(a)], path)
    append_csv([grade_row(b)], path)
    first = path.read_text()
    header = first.splitlines()[0].split(",")
    assert header[:5] == ["student", "assignment", "score", "max_score", "integrity"]
    assert header[5:] == ["kl: KL matches the oracle", "kl: KL is zero at the prior",
                          "sampling: sampling has the right shape", "sampling: sampling follows mu + sigma * eps"]
    rows = _read(path)
    assert [(r["student"], r["score"], r["max_score"]) for r in rows] == [("alice", "8", "8"), ("bob", "4.5", "8")]
    assert rows[1]["kl: KL is zero at the prior"] == "0"
    assert [r["integrity"] for r in rows] == ["", ""]         # nothing the package's own (tests/test_integrity.py)

    # a resumed batch grades bob again (now better) and adds carol: still one row each, same order
    better = make_report("bob", scores=[2, 1, 2, 3])
    append_csv([grade_row(better), grade_row(make_report("carol", [0, 0, 0, 0]))], path)
    append_csv([grade_row(better)], path)
    rows = _read(path)
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert rows[1]["score"] == "8"
    assert path.read_text().splitlines()[0].split(",") == header

    # a new check later adds a column at the end, old rows get an empty cell
    extra = make_report("dave")
    extra.results.append(CheckResult("decoder output in [0, 1]", "decoder", 1.0, 1.0, "", True))
    append_csv([grade_row(extra)], path)
    rows = _read(path)
    assert list(rows[0])[-1] == "decoder: decoder output in [0, 1]"
    assert rows[0]["decoder: decoder output in [0, 1]"] == "" and rows[-1]["decoder: decoder output in [0, 1]"] == "1"

    # the batch's final write gives the same columns, sorted by student
    full = tmp_path / "full.csv"
    write_grades_csv([b, a], full)
    assert [r["student"] for r in _read(full)] == ["alice", "bob"]
    assert full.read_text().splitlines()[0].split(",") == header


def test_batch_outputs_resume_and_second_folder(tmp_path):
    from gencourse.grading.report import write_batch_outputs

    write_batch_outputs({"bob": partial_report(), "alice": make_report("alice")}, tmp_path)
    write_batch_outputs({"bob": partial_report(), "alice": make_report("alice")}, tmp_path)   # resumed
    write_batch_outputs([make_report("carol", [0, 0, 0, 0])], tmp_path)                     # a later folder
    assert [(r["student"], r["score"]) for r in _read(tmp_path / "grades.csv")] == \
        [("alice", "8"), ("bob", "4.5"), ("carol", "0")]
    for student in ("alice", "bob", "carol"):
        assert validate_results(json.loads((tmp_path / student / "results.json").read_text())) == []
        assert (tmp_path / student / "feedback.txt").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice", "bob", "carol", "grades.csv"]


def test_write_outputs_for_one_submission(tmp_path):
    write_outputs(partial_report(), tmp_path / "bob", csv_path=tmp_path / "grades.csv")
    assert validate_results(json.loads((tmp_path / "bob" / "results.json").read_text())) == []
    assert "Total: 4.5 / 8" in (tmp_path / "bob" / "feedback.txt").read_text()
    assert _read(tmp_path / "grades.csv")[0]["student"] == "bob"


# --------------------------------------------------------------------------- nbgrader gradebook

def _nbgrader_cell(gid, *, grade=False, solution=False, points=None):
    meta = {"grade": grade, "solution": solution, "locked": not solution, "grade_id": gid, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


@pytest.fixture(scope="module")
def released_course(tmp_path_factory):
    """A course folder after `nbgrader generate_assignment toy`: its gradebook.db knows the toy notebook."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    course = tmp_path_factory.mktemp("course")
    cells = [
        new_markdown_cell("# A toy VAE assignment", metadata=_nbgrader_cell("intro")),
        new_code_cell("def kl(mu, log_var):\n    ### BEGIN SOLUTION\n    return 0\n    ### END SOLUTION",
                      metadata=_nbgrader_cell("kl", solution=True)),
        new_markdown_cell("Why? ### BEGIN SOLUTION\nbecause\n### END SOLUTION",   # a written answer between
                          metadata=_nbgrader_cell("kl_answer", grade=True, solution=True, points=2)),
        new_code_cell("assert kl(0, 0) == 0", metadata=_nbgrader_cell("kl_visible", grade=True, points=2)),
        new_code_cell("assert True", metadata=_nbgrader_cell("kl_hidden", grade=True, points=2)),
        new_code_cell("def sample(mu, log_var):\n    ### BEGIN SOLUTION\n    return mu\n    ### END SOLUTION",
                      metadata=_nbgrader_cell("sampling", solution=True)),
        new_code_cell("assert sample(1, 0) == 1", metadata=_nbgrader_cell("test_sampling", grade=True, points=5)),
        new_code_cell("def decode(z):\n    ### BEGIN SOLUTION\n    return z\n    ### END SOLUTION",
                      metadata=_nbgrader_cell("decoder", solution=True)),
        new_code_cell("assert decode(1) == 1", metadata=_nbgrader_cell("test_decoder", grade=True, points=1)),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    (course / "source" / "toy").mkdir(parents=True)
    nbformat.write(nb, course / "source" / "toy" / "vae_tf.ipynb")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "toy", "--force"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (course / "gradebook.db").is_file()
    return course


def test_gradebook_round_trip(released_course, tmp_path):
    from nbgrader.api import Gradebook
    from gencourse.grading.gradebook import write_gradebook

    db = tmp_path / "gradebook.db"
    shutil.copy(released_course / "gradebook.db", db)
    reports = [make_report("alice"), partial_report()]
    summary = write_gradebook(reports, db, assignment="toy", source_dir=released_course / "source")
    assert summary.unmapped_parts == {}
    assert summary.untouched_cells == {"vae_tf": ["test_decoder"]}

    with Gradebook(f"sqlite:///{db}") as gb:
        def auto(cell, student):
            g = gb.find_grade(cell, "vae_tf", "toy", student)
            assert g.needs_manual_grade is False or cell == "test_decoder"
            return g.auto_score
        # alice earned everything: every mapped test cell has its full nbgrader points
        assert [auto(c, "alice") for c in ("kl_visible", "kl_hidden", "test_sampling")] == [2.0, 2.0, 5.0]
        # bob: kl 2 of 3 points (both kl test cells get 2/3 of theirs), sampling 2.5 of 5
        assert [auto(c, "bob") for c in ("kl_visible", "kl_hidden", "test_sampling")] == \
            [pytest.approx(4 / 3, abs=1e-3), pytest.approx(4 / 3, abs=1e-3), 2.5]
        assert gb.find_grade("test_decoder", "vae_tf", "toy", "bob").auto_score is None
        sub = gb.find_submission("toy", "bob")
        assert sub.score == pytest.approx(4 / 3 * 2 + 2.5, abs=1e-3)
        comment = gb.find_comment("kl", "vae_tf", "toy", "bob").auto_comment
        assert "[FAIL] 0 / 1 KL is zero at the prior" in comment

    # rerun with a better grade: same rows, new scores; a manual score keeps its review flag
    with Gradebook(f"sqlite:///{db}") as gb:
        g = gb.find_grade("test_sampling", "vae_tf", "toy", "bob")
        g.manual_score = 4.0
        gb.db.commit()
    summary = write_gradebook([make_report("bob", [2, 1, 2, 3])], db, assignment="toy",
                              cell_map={"kl": ["kl_visible", "kl_hidden"], "sampling": ["test_sampling"]})
    assert summary.needs_review == [("bob", "vae_tf", "test_sampling")]
    with Gradebook(f"sqlite:///{db}") as gb:
        assert len(gb.find_assignment("toy").submissions) == 2
        assert gb.find_grade("kl_visible", "vae_tf", "toy", "bob").auto_score == 2.0
        g = gb.find_grade("test_sampling", "vae_tf", "toy", "bob")
        assert (g.auto_score, g.manual_score, g.needs_manual_grade) == (5.0, 4.0, True)


def test_gradebook_errors_are_clear(released_course, tmp_path):
    from gencourse.grading.gradebook import GradebookError, write_gradebook

    with pytest.raises(GradebookError, match="no nbgrader gradebook"):
        write_gradebook([make_report()], tmp_path / "missing.db", assignment="toy")
    assert not (tmp_path / "missing.db").exists()
    db = tmp_path / "gradebook.db"
    shutil.copy(released_course / "gradebook.db", db)
    with pytest.raises(GradebookError, match="assignment 'vae' is not in the gradebook.*generate_assignment vae"):
        write_gradebook([make_report()], db, assignment="vae")
    with pytest.raises(GradebookError, match="notebook 'vae_torch'"):
        write_gradebook([make_report()], db, assignment="toy", notebook="vae_torch")


def test_gradebook_assignment_defaults_to_the_key_where_the_gradebook_has_it(released_course, tmp_path):
    """One nbgrader assignment per track (gencourse nbgrader init) is found by the key; a course made by
    hand, both tracks in one assignment, by the key's NAME; reports of two assignments need the flag."""
    from nbgrader.api import Gradebook

    from gencourse.grading.gradebook import GradebookError, db_url_of, default_assignment_name

    db = tmp_path / "gradebook.db"
    shutil.copy(released_course / "gradebook.db", db)
    url = db_url_of(db)
    assert default_assignment_name({"vae-tf"}, url) == "vae"
    with Gradebook(url) as gb:
        gb.add_assignment("vae-tf")
    assert default_assignment_name({"vae-tf"}, url) == "vae-tf"
    assert default_assignment_name({"vae-tf", "vae-torch"}, url) == "vae"
    with pytest.raises(GradebookError, match="several assignments.*--nbgrader-assignment"):
        default_assignment_name({"vae-tf", "cyclegan-tf"}, url)


def test_real_notebook_test_cells_map_to_parts():
    """In the VAE notebooks each part's autograded test cell is test_<part> (the gradebook maps by that
    name first) and follows the part; by position alone it falls to the part just before it."""
    from gencourse.grading.gradebook import cell_map_from_notebook
    from gencourse.vae.assignment import PARTS

    root = Path(__file__).resolve().parents[1] / "solutions" / "vae"
    if not (root / "vae_tf.ipynb").is_file():
        pytest.skip("solutions/vae is not there yet")
    for track in ("tf", "torch"):
        by_position = cell_map_from_notebook(root / f"vae_{track}.ipynb", PARTS)
        claimed = [c for cells in by_position.values() for c in cells]
        assert sorted(claimed) == sorted([f"test_{p}" for p in PARTS] + ["test_training"])
        for part, cells in by_position.items():
            assert f"test_{part}" in cells


@pytest.mark.slow
def test_grade_command_writes_outputs_and_gradebook(tmp_path):
    """`gencourse grade ... --gradebook DB` on an nbgrader course: files per student, CSV, gradebook; resumable."""
    from nbgrader.api import Gradebook
    from grading_toy_outputs import TOY_HIDDEN, toy_env, toy_notebook, write_toy_modules

    modules = write_toy_modules()
    try:
        course = tmp_path / "course"
        (course / "source" / "toy").mkdir(parents=True)
        (course / "source" / "toy" / "toy_py.ipynb").write_text(json.dumps(toy_notebook("return x * x", True)))
        env = toy_env(modules)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "toy", "--force"],
                              cwd=course, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        for student, body in (("alice", "return x * x"), ("bob", "return x + x")):
            folder = course / "submitted" / student / "toy"
            folder.mkdir(parents=True)
            (folder / "toy_py.ipynb").write_text(json.dumps(toy_notebook(body)))
        hidden = tmp_path / "hidden"
        hidden.mkdir()
        (hidden / "toy.py").write_text(TOY_HIDDEN)
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "gencourse.cli", "grade", str(course / "submitted"), "--assignment", "toy-py",
               "--out", str(out), "--jobs", "2", "--hidden", str(hidden), "--solutions", str(course / "source"),
               "--gradebook", str(course / "gradebook.db"), "--no-progress"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "gradebook: 4 autograded cell score(s) for 2 student(s)" in done.stdout, done.stdout

        for student, total in (("alice", "6"), ("bob", "3")):
            results = json.loads((out / student / "results.json").read_text())
            assert validate_results(results) == []
            assert (out / student / "feedback.txt").read_text().rstrip().endswith(f"Total: {total} / 6 points"
                                                                                   f" ({int(total) * 100 // 6} %)")
        rows = _read(out / "grades.csv")
        assert [(r["student"], r["score"]) for r in rows] == [("alice", "6"), ("bob", "3")]
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            scores = {(s, c): gb.find_grade(c, "toy_py", "toy", s).auto_score
                      for s in ("alice", "bob") for c in ("test_double", "test_square")}
        assert scores == {("alice", "test_double"): 3.0, ("alice", "test_square"): 3.0,
                          ("bob", "test_double"): 3.0, ("bob", "test_square"): 0.0}

        # resumed: nothing regraded, still one row per student
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert [r["student"] for r in _read(out / "grades.csv")] == ["alice", "bob"]

        # a gradebook without the assignment: a clear error, exit status 2
        empty = tmp_path / "empty.db"
        shutil.copy(course / "gradebook.db", empty)
        with Gradebook(f"sqlite:///{empty}") as gb:
            gb.remove_assignment("toy")
        done = subprocess.run(cmd[:-3] + ["--gradebook", str(empty), "--no-progress"], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 2 and "assignment 'toy' is not in the gradebook" in done.stderr, done.stderr
    finally:
        shutil.rmtree(modules, ignore_errors=True)
