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


# ---------------------------------------------------------------------------- outputs are not the notebook

def with_outputs(path: Path, outputs_mb: float, source_extra: str = "") -> Path:
    """The toy submission with a large plot in every cell's outputs (and optionally more source)."""
    toy.make_notebook(path)
    data = json.loads(path.read_text())
    blob = "A" * int(outputs_mb * 2**20 / len(data["cells"]))
    for cell in data["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "display_data", "data": {"image/png": blob, "text/plain": ["<Fig>"]},
                                "metadata": {}}, {"output_type": "stream", "name": "stdout", "text": ["\"outputs\": 1\n"]}]
        else:
            cell["attachments"] = {"plot.png": {"image/png": blob}}
    data["cells"][1]["source"] += source_extra
    path.write_text(json.dumps(data))
    return path


def test_a_notebook_large_only_by_its_outputs_is_graded(tmp_path):
    nb = with_outputs(tmp_path / "big.ipynb", 80)
    assert nb.stat().st_size > 80 * 2**20
    parsed = read_notebook(nb)
    assert parsed.readable and not parsed.notes, parsed.notes
    assert parsed.cells["square"].source == toy.SOLUTION["square"]


def test_strip_outputs_keeps_everything_else(tmp_path):
    from gencourse.grading.notebook import strip_outputs

    nb = with_outputs(tmp_path / "small.ipynb", 0.01, source_extra='# a "quoted" \\\\"outputs\\\\": [1] text\n')
    data = json.loads(nb.read_text())
    for cell in data["cells"]:
        cell.pop("outputs", None) is not None and cell.__setitem__("outputs", [])
        cell.pop("attachments", None) is not None and cell.__setitem__("attachments", {})
    assert json.loads(strip_outputs(nb.read_bytes())) == data


def test_a_notebook_whose_sources_are_too_large_is_refused(tmp_path, monkeypatch):
    from gencourse.grading import notebook

    monkeypatch.setattr(notebook, "MAX_NOTEBOOK_BYTES", 2**20)
    nb = with_outputs(tmp_path / "code.ipynb", 4, source_extra="# " + "x" * 2**21 + "\n")
    parsed = read_notebook(nb)
    assert not parsed.readable and "MB of code and text (outputs left out)" in parsed.notes[0]
    monkeypatch.setattr(notebook, "MAX_FILE_BYTES", 2**20)
    assert "larger than the 1 MB a submitted file may have" in read_notebook(nb).notes[0]
