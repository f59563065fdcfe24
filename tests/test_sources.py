"""The one-source format (`gencourse.grading.sources`) on small sources written here."""

from __future__ import annotations

import json

import nbformat
import pytest

from gencourse.grading.sources import SourceError, generate, notebooks, parse

HEAD = "%% notebook tracks=tf,torch\nnotes for the editor\n\n"


def source(tmp_path, body: str, head: str = HEAD):
    path = tmp_path / "demo" / "demo.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(head + body, encoding="utf-8")
    return path


def cells(path, track):
    return nbformat.reads(notebooks(path)[f"demo_{track}.ipynb"], as_version=4).cells


def test_shared_and_track_cells_and_notebook_metadata(tmp_path):
    path = source(tmp_path, "%% markdown\n# Both\n\n%% code track=tf\nimport keras\n\n"
                            "%% code track=torch\nimport torch\n\n%% code\nprint(1)\n")
    out = notebooks(path)
    assert sorted(out) == ["demo_tf.ipynb", "demo_torch.ipynb"]
    for track, module in (("tf", "keras"), ("torch", "torch")):
        nb = nbformat.reads(out[f"demo_{track}.ipynb"], as_version=4)
        assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
        assert nb.metadata == {"gencourse": {"assignment": f"demo-{track}"},
                               "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                              "name": "python3"},
                               "language_info": {"name": "python"}}
        assert [(c.cell_type, c.source) for c in nb.cells] == [
            ("markdown", "# Both"), ("code", f"import {module}"), ("code", "print(1)")]
        assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert "notes for the editor" not in out["demo_tf.ipynb"] + out["demo_torch.ipynb"]


def test_inline_spans_across_lines_and_tags_alone_on_their_lines(tmp_path):
    path = source(tmp_path, "%% markdown\nWith <tf>TensorFlow\nand Keras</tf><torch>PyTorch</torch>, NCHW<tf> or NHWC</tf>.\n"
                            "%% code\nimport os\n<tf>\nimport keras\nimport tensorflow\n</tf>\n<torch>\nimport torch\n"
                            "</torch>\nx = 1\n<tf>\ny = 2\n</tf>\n")
    tf, torch = cells(path, "tf"), cells(path, "torch")
    assert tf[0].source == "With TensorFlow\nand Keras, NCHW or NHWC."
    assert torch[0].source == "With PyTorch, NCHW."
    assert tf[1].source == "import os\nimport keras\nimport tensorflow\nx = 1\ny = 2"
    assert torch[1].source == "import os\nimport torch\nx = 1"


def test_substitutions_and_other_braces(tmp_path):
    path = source(tmp_path, '%% code\nrun("{{key}}", "{{track}}")\nf"{{other}}"  # $\\frac{a}{b_{c}}}$\n')
    assert cells(path, "torch")[0].source == 'run("demo-torch", "torch")\nf"{{other}}"  # $\\frac{a}{b_{c}}}$'
    assert cells(path, "tf")[0].source.startswith('run("demo-tf", "tf")')


def test_nbgrader_metadata_and_cell_ids(tmp_path):
    path = source(tmp_path, "%% markdown\nfirst\n\n%% code id=part solution\ndef f(): pass\n\n%% code\nf()\n\n"
                            "%% code track=torch\ng()\n\n%% code\nh()\n\n%% code id=test_part locked points=3\n"
                            "check()\n\n%% markdown id=answer solution points=1.5\n### BEGIN SOLUTION\nyes\n"
                            "### END SOLUTION\n")
    tf, torch = cells(path, "tf"), cells(path, "torch")
    assert [c.id for c in tf] == ["cell-1", "part", "part-1", "part-2", "test_part", "answer"]
    assert [c.id for c in torch] == ["cell-1", "part", "part-1", "part-2", "part-3", "test_part", "answer"]
    assert tf[0].metadata == {} and tf[2].metadata == {}
    assert tf[1].metadata.nbgrader == {"grade": False, "grade_id": "part", "locked": False,
                                       "schema_version": 3, "solution": True, "task": False}
    assert tf[4].metadata.nbgrader == {"grade": True, "grade_id": "test_part", "locked": True, "points": 3,
                                       "schema_version": 3, "solution": False, "task": False}
    assert tf[5].metadata.nbgrader["points"] == 1.5 and tf[5].cell_type == "markdown"


def test_blank_lines_and_magics(tmp_path):
    path = source(tmp_path, "%% code\n\n%%time\nx = 1   \n\n\n   \n%% markdown\ntext\n")
    assert [c.source for c in cells(path, "tf")] == ["\n%%time\nx = 1   ", "text"]


def test_same_input_same_bytes_and_generate_writes_them(tmp_path):
    path = source(tmp_path, "%% markdown id=intro locked\n# Title (<tf>Keras</tf><torch>PyTorch</torch>)\n\n%% code\nx = 1\n")
    first = notebooks(path)
    assert notebooks(path) == first
    written = generate(path)
    assert sorted(p.name for p in written) == sorted(first)
    assert all(p.read_text(encoding="utf-8") == first[p.name] for p in written)
    assert json.loads(first["demo_tf.ipynb"])["cells"][0]["id"] == "intro"
    generate(path, tmp_path)
    assert (tmp_path / "demo_tf.ipynb").read_text(encoding="utf-8") == first["demo_tf.ipynb"]


def test_one_id_in_each_track(tmp_path):
    path = source(tmp_path, "%% code id=part solution points=2 track=tf\na\n%% code id=part solution points=2 track=torch\nb\n")
    assert cells(path, "tf")[0].source == "a" and cells(path, "torch")[0].source == "b"
    assert parse(path).tracks == ("tf", "torch")


ERRORS = [
    ("%% notebook\n", "", 1, "names no tracks"),
    ("\n%% markdown\nx\n", "", 2, "starts with `%% notebook"),
    ("%% notebook tracks=tf,tf\n", "", 1, "bad notebook word"),
    (HEAD, "%% markdown\nx\n%% raw\ny\n", 6, "unknown cell type 'raw'"),
    (HEAD, "%% code hidden\n", 4, "unknown flag 'hidden'"),
    (HEAD, "%% code id=a track=jax\n", 4, "bad track 'jax' (expected one of tf, torch)"),
    (HEAD, "%% code id=a points=three\n", 4, "bad points 'three'"),
    (HEAD, "%% code id=a.b\n", 4, "bad id 'a.b'"),
    (HEAD, "%% code\nx\n%% code locked\n", 6, "need an id="),
    (HEAD, "%% markdown\nline\nstart <tf>never\nclosed\n", 6, "unclosed <tf>"),
    (HEAD, "%% markdown\n\n\nx</torch>\n", 7, "</torch> without an opening <torch>"),
    (HEAD, "%% markdown\n<tf>a <torch>b</torch></tf>\n", 5, "spans do not nest"),
    (HEAD, "%% markdown\n<tf>a</torch>\n", 5, "</torch> closes <tf> of line 5"),
    (HEAD, "%% code id=a locked\nx\n%% code\ny\n%% code id=a locked track=torch\nz\n", 8,
     "id=a is used twice in track torch (also line 4)"),
    (HEAD, "%% code id=a locked\nx\n%% code\ny\n%% code id=a-1\n", 8, "id=a-1 is used twice in track tf (also line 6)"),
    (HEAD, "%% code\n%% code id=t points=2 track=tf\n", 5, "graded id=t has no graded counterpart in track torch"),
    (HEAD, "%% code id=t points=2 track=tf\n%% code id=t points=3 track=torch\n", 4, "different points"),
]


@pytest.mark.parametrize("head, body, line, message", ERRORS, ids=[e[3][:30] for e in ERRORS])
def test_errors_name_file_and_line(tmp_path, head, body, line, message):
    path = source(tmp_path, body, head=head)
    with pytest.raises(SourceError) as caught:
        notebooks(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)
