"""The Gradescope autograder zip, unpacked into an /autograder-like folder and run for real.

A toy assignment (registered by a module these tests write) keeps the run short;
`test_real_vae_autograder` does the same with the VAE solution notebook when it exists.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gencourse.grading.gradescope import CONFIG_NAME, build_autograder_zip, find_submission
from gencourse.grading.results_json import validate_results
from grading_toy_outputs import TOY_HIDDEN, toy_env, toy_notebook, write_toy_modules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy assignment's files; its modules live in a folder the unprivileged worker can read."""
    base = tmp_path_factory.mktemp("toy")
    modules = write_toy_modules()
    (base / "solutions" / "toy").mkdir(parents=True)
    (base / "solutions" / "toy" / "toy_py.ipynb").write_text(json.dumps(toy_notebook("return x * x")))
    (base / "hidden").mkdir()
    (base / "hidden" / "toy.py").write_text(TOY_HIDDEN)
    # a fake wheel keeps this test offline and fast; test_zip_contents builds the real one
    wheel = base / "gencourse-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("gencourse/__init__.py", "")
    zip_path = build_autograder_zip("toy", base / "toy-autograder.zip", wheel=wheel, solutions=base / "solutions",
                                    hidden_dir=base / "hidden")
    yield {"base": base, "modules": modules, "zip": zip_path}
    shutil.rmtree(modules, ignore_errors=True)


def unpack(zip_path: Path, root: Path, submission: dict | None, name="toy_py.ipynb") -> Path:
    """An /autograder-like tree as Gradescope's harness makes it."""
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    if submission is not None:
        (root / "submission" / name).write_text(json.dumps(submission))
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"email": "ada@example.edu",
                                                                          "name": "Ada"}]}))
    return root


def run_autograder(root: Path, toy=None, python=sys.executable, timeout=600) -> dict:
    env = dict(os.environ, GENCOURSE_AUTOGRADER_ROOT=str(root), GENCOURSE_AUTOGRADER_PYTHON=python)
    if toy is not None:
        env = toy_env(toy["modules"], env)
    done = subprocess.run(["bash", str(root / "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    path = root / "results" / "results.json"
    assert path.is_file(), done.stdout + done.stderr
    results = json.loads(path.read_text())
    assert validate_results(results) == [], results
    results["_stdout"] = done.stdout + done.stderr
    return results


def test_zip_contents(tmp_path):
    """The real build: a gencourse wheel from this repository, the scripts at the zip's root."""
    solutions = tmp_path / "solutions" / "vae"
    solutions.mkdir(parents=True)
    for track in ("tf", "torch"):
        (solutions / f"vae_{track}.ipynb").write_text(json.dumps(toy_notebook("return x * x")))
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "vae.py").write_text("def checks(assignment):\n    return []\n")
    (hidden / "cyclegan.py").write_text("# another assignment's hidden checks\n")
    out = build_autograder_zip("vae", tmp_path / "vae.zip", solutions=tmp_path / "solutions", hidden_dir=hidden)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
        config = json.loads(zf.read(CONFIG_NAME))
        wheel_name = next(n for n in names if n.startswith("dist/gencourse-") and n.endswith(".whl"))
        zf.extract(wheel_name, tmp_path)
    assert {"setup.sh", "run_autograder", CONFIG_NAME, "hidden/vae.py",
            "solutions/vae/vae_tf.ipynb", "solutions/vae/vae_torch.ipynb"} <= set(names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755 and modes["hidden/vae.py"] == 0o600
    assert "hidden/cyclegan.py" not in names                  # only this assignment's hidden checks
    assert config["notebooks"] == {"vae-tf": "vae_tf.ipynb", "vae-torch": "vae_torch.ipynb"}
    assert f'{wheel_name.split("/")[1]}[tf,torch]' in setup
    assert "download.pytorch.org/whl/cpu 'torch==2.13.0'" in setup
    assert 'chmod -R go-rwx "$SRC"' in setup
    subprocess.run(["bash", "-n", "-c", setup], check=True)
    with zipfile.ZipFile(tmp_path / wheel_name) as whl:
        inside = whl.namelist()
        metadata = whl.read(next(n for n in inside if n.endswith(".dist-info/METADATA"))).decode()
        licence = next((whl.read(n).decode() for n in inside if n.endswith(".dist-info/licenses/LICENSE")), "")
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    assert licence == (ROOT / "LICENSE").read_text() and licence.startswith("MIT License")   # shipped as written
    assert "gencourse/grading/gradescope.py" in inside and "gencourse/grading/batch.py" in inside
    assert not any("hidden" in n for n in inside)           # hidden checks never ship in the package
    assert "gencourse/stylegan/pretrained/gs.npz" in inside  # the shipped StyleGAN does


def test_finding_the_submission(tmp_path):
    nbs = {"vae-tf": "vae_tf.ipynb", "vae-torch": "vae_torch.ipynb"}
    (tmp_path / "sub" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "sub" / ".ipynb_checkpoints" / "vae_tf.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="no notebook"):
        find_submission(tmp_path / "sub", nbs)
    renamed = toy_notebook("return x * x")
    renamed["cells"][1]["source"] = "import torch"
    (tmp_path / "sub" / "my work.ipynb").write_text(json.dumps(renamed))
    assert find_submission(tmp_path / "sub", nbs) == (tmp_path / "sub" / "my work.ipynb", "vae-torch")
    (tmp_path / "sub" / "deep").mkdir()
    (tmp_path / "sub" / "deep" / "vae_tf.ipynb").write_text("{}")
    assert find_submission(tmp_path / "sub", nbs)[1] == "vae-tf"


@pytest.mark.slow
def test_toy_autograder_end_to_end(toy, tmp_path):
    # square is wrong: 2 + 1 (hidden) of 6 points
    root = unpack(toy["zip"], tmp_path / "autograder", toy_notebook("return x + x"))
    results = run_autograder(root, toy)
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["double: double doubles"]["score"] == 2.0
    assert tests["square: square squares"]["score"] == 0.0
    assert "expected [0.0, 1.0, 4.0, 9.0], got [0.0, 2.0, 4.0, 6.0]" in tests["square: square squares"]["output"]
    hidden = tests["double: double on hidden inputs"]
    assert hidden["visibility"] == "after_published" and hidden["score"] == 1.0
    assert results["score"] == pytest.approx(3.0)
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(6.0)
    assert "ada@example.edu" in results["output"]
    assert "isolated worker" in results["output"]
    assert isinstance(results["execution_time"], int)
    # the hidden checks and source notebooks are root's only after a run
    for p in (root / "source", root / "source" / "hidden" / "toy.py", root / "source" / "solutions"):
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p


@pytest.mark.slow
def test_autograder_always_writes_results(toy, tmp_path):
    # nothing submitted: a clear message, score 0
    root = unpack(toy["zip"], tmp_path / "empty", None)
    results = run_autograder(root, toy)
    assert results["score"] == 0.0 and "no notebook (.ipynb) was submitted" in results["output"]
    # the grader cannot even start (a broken image): run_autograder still explains
    root = unpack(toy["zip"], tmp_path / "broken", toy_notebook("return x * x"))
    results = run_autograder(root, toy, python="/nonexistent/python3")
    assert results["score"] == 0.0 and "could not start" in results["output"]
    # an unknown assignment key (the registry lacks it): the grader's error, explained
    root = unpack(toy["zip"], tmp_path / "unknown", toy_notebook("return x * x"))
    results = run_autograder(root, None)
    assert results["score"] == 0.0 and "unknown assignment 'toy-py'" in results["output"]
