"""The conventions of a command that IT staff and scripts rely on: --version, a help text for every
option, a one-line error (no traceback) from a failing release, no progress-bar frames in a log.
(`gencourse check`'s exit status: tests/test_grading_isolation.py and the README's runs.)"""

from __future__ import annotations

import argparse
import importlib.metadata
import io

import pytest

from gencourse.cli import build_parser, main
from gencourse.progress import tqdm


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"gencourse {importlib.metadata.version('gencourse')}"


def options(parser, path=("gencourse",)):
    """(command path, option) for every argument of every subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, path + (name,))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), action


def test_every_option_has_a_help_text():
    found = list(options(build_parser()))
    assert len({p for p, _ in found}) >= 10            # the walk reached the subcommands' subcommands
    bare = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in found
            if not a.help or a.help == argparse.SUPPRESS]
    assert not bare, "options without a help text: " + "; ".join(bare)


def test_a_failing_release_says_why_in_one_line(tmp_path, capsys):
    source = tmp_path / "solutions"
    (source / "broken").mkdir(parents=True)
    assert main(["release", "nosuch", "--source", str(source), "--release", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gencourse release: error: ") and "nosuch: no such assignment folder" in err
    (source / "broken" / "broken.ipynb").write_text("{ not a notebook")          # nbgrader itself fails
    assert main(["release", "broken", "--source", str(source), "--release", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "broken" in err, err


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream", [io.StringIO, Terminal])
def test_progress_bars_are_drawn_on_a_terminal_only(stream):
    out = stream()
    for epoch in (1, 2):
        with tqdm(total=40, desc=f"vae/tf epoch {epoch}/2", unit="img", file=out, mininterval=0) as bar:
            for _ in range(4):
                bar.update(10)
    with tqdm(total=3, desc="hidden", file=out, disable=True) as bar:      # --no-progress: nothing at all
        bar.update(3)
    text = out.getvalue()
    if stream is Terminal:
        assert text.count("\r") >= 8 and "40/40" in text                # redrawn in place
    else:
        lines = text.splitlines()                                        # a log: one line per bar, no frames
        assert "\r" not in text and len(lines) == 2, lines
        assert lines[0].startswith("vae/tf epoch 1/2: 40/40 img in ") and lines[1].startswith("vae/tf epoch 2/2")
    assert "hidden" not in text


def test_training_and_grading_use_the_log_friendly_bar():
    from gencourse.cyclegan import run as cyclegan
    from gencourse.stylegan import run as stylegan
    from gencourse.vae import run as vae

    assert vae.tqdm is cyclegan.tqdm is stylegan.tqdm is tqdm
    import inspect

    from gencourse.grading import batch
    assert "from ..progress import tqdm" in inspect.getsource(batch)
