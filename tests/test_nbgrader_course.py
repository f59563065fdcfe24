"""`gencourse nbgrader init`: what it writes, and that it neither clobbers an edited config nor hides an error.
(nbgrader's own generate_assignment, autograde and generate_feedback on the folder: the run of
autograder/README.md §3 in tests/test_readme_commands.py.)"""

from __future__ import annotations

import runpy

from gencourse.cli import main


def test_init_writes_a_course_folder_and_keeps_an_edited_config(tmp_path, capsys, monkeypatch):
    import os

    # The config sets it: absent here, and absent again after (a delenv of an absent variable records
    # nothing to undo, so the config's value would leak into every later test of this process).
    monkeypatch.setenv("GENCOURSE_HIDDEN_DIR", "")
    monkeypatch.delenv("GENCOURSE_HIDDEN_DIR")
    course = tmp_path / "course"
    assert main(["nbgrader", "init", str(course), "--assignment", "vae"]) == 0
    assert sorted(p.name for p in (course / "source").iterdir()) == ["vae-tf", "vae-torch"]
    assert [p.name for p in (course / "source" / "vae-tf").iterdir()] == ["vae_tf.ipynb"]   # one notebook each
    assert (course / "autograder" / "hidden" / "vae.py").is_file()

    class Config(dict):                  # nbgrader's loader gives get_config(); attribute access makes sections
        def __getattr__(self, name):
            return self.setdefault(name, Config())

        __setattr__ = dict.__setitem__

    c = Config()
    runpy.run_path(str(course / "nbgrader_config.py"), {"get_config": lambda: c})
    assert c.CourseDirectory.root == str(course.resolve()) and c.CourseDirectory.source_directory == "source"
    assert c.CourseDirectory.db_assignments == [{"name": "vae-tf"}, {"name": "vae-torch"}]
    assert os.environ["GENCOURSE_HIDDEN_DIR"] == str(course.resolve() / "autograder" / "hidden")

    assert main(["nbgrader", "init", str(course), "--assignment", "vae"]) == 0       # a rerun: the same folder
    (course / "nbgrader_config.py").write_text("# the instructor's own\n")
    capsys.readouterr()
    assert main(["nbgrader", "init", str(course), "--assignment", "vae"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert (course / "nbgrader_config.py").read_text() == "# the instructor's own\n"
    assert main(["nbgrader", "init", str(course), "--assignment", "vae", "--force"]) == 0
    assert main(["nbgrader", "init", str(course), "--assignment", "nosuch"]) == 2
    assert "gencourse release nosuch" in capsys.readouterr().err
