"""Reading graded cells out of notebooks: every oddity becomes a note, never an exception."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "grading_fixtures"
sys.path.insert(0, str(FIXTURES))

import grading_toy as toy  # noqa: E402

from gencourse.grading.notebook import (  # noqa: E402
    extract_cells, notebook_assignment, read_notebook, strip_magics)


def test_cells_by_grade_id(tmp_path):
    nb = toy.make_notebook(tmp_path / "a.ipynb")
    sources, notes = extract_cells(nb, ["setup", "square", "normalize", "scale"])
    assert notes == []
    assert sources["square"] == toy.SOLUTION["square"]
    assert "SCALE = 3.0" in sources["setup"]
    parsed = read_notebook(nb)
    assert parsed.order == ["setup", "square", "normalize", "scale"]
    assert parsed.cells["setup"].locked and parsed.cells["square"].solution
    assert notebook_assignment(nb) == toy.KEY


def test_missing_and_retyped_cells(tmp_path):
    nb = toy.make_notebook(tmp_path / "a.ipynb", drop=["square"], retype=["scale"])
    sources, notes = extract_cells(nb, ["square", "normalize", "scale"])
    assert set(sources) == {"normalize"}
    assert any("'square' is missing" in n for n in notes)
    assert any("'scale' is a markdown cell" in n for n in notes)


def test_duplicated_grade_id_uses_the_first_code_cell(tmp_path):
    extra = [toy.cell("square", "def square(x):\n    return -x\n", solution=True)]
    nb = toy.make_notebook(tmp_path / "a.ipynb", extra=extra)
    sources, notes = extract_cells(nb, ["square"])
    assert sources["square"] == toy.SOLUTION["square"]
    assert any("used by 2 cells" in n for n in notes)


@pytest.mark.parametrize("content", [b"not json at all {", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'{"cells": 5}', b""])
def test_not_a_notebook(tmp_path, content):
    p = tmp_path / "broken.ipynb"
    p.write_bytes(content)
    sources, notes = extract_cells(p, ["square"])
    assert sources == {}
    assert len(notes) == 1 and "notebook" in notes[0]
    assert notebook_assignment(p) is None


def test_missing_file(tmp_path):
    sources, notes = extract_cells(tmp_path / "nope.ipynb", ["square"])
    assert sources == {} and "does not exist" in notes[0]


def test_nbformat3_worksheets_and_list_sources(tmp_path):
    cell = {"cell_type": "code", "input": ["def square(x):\n", "    return x * x\n"],
            "metadata": {"nbgrader": {"grade_id": "square", "solution": True}}}
    p = tmp_path / "old.ipynb"
    p.write_text(json.dumps({"nbformat": 3, "worksheets": [{"cells": [cell, "junk", {"metadata": 3}]}],
                             "metadata": {"gencourse": "odd"}}))
    sources, notes = extract_cells(p, ["square"])
    assert sources["square"] == "def square(x):\n    return x * x\n" and notes == []
    assert notebook_assignment(p) is None


def test_magics_become_pass():
    src = "%matplotlib inline\nimport numpy as np\ndef f(x):\n    !ls\n    return x\n"
    out = strip_magics(src)
    compile(out, "<cell>", "exec")
    assert "pass  # %matplotlib inline" in out and "    pass  # !ls" in out
