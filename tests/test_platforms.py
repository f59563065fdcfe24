"""The extras resolve on students' laptops: pip asked for Linux x86-64, macOS arm64 and Windows x86-64.

benchmarks/platforms.py resolves every platform x Python x extra (docs/results.md); here each
platform once, all three extras together (they must coexist) and each Python version once, in
parallel: pip reads the wheels' metadata from PyPI and installs nothing. Skipped, saying so, where
PyPI cannot be reached.
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import platforms  # noqa: E402

from gencourse.requirements import pin, requirements  # noqa: E402

CASES = [("linux-x86_64", "3.10"), ("macos-arm64", "3.11"), ("windows-x86_64", "3.12")]


@pytest.fixture(scope="module")
def resolved():
    with ThreadPoolExecutor(len(CASES)) as pool:
        done = list(pool.map(lambda case: platforms.resolve(*case, ["tf", "torch", "grading"]), CASES))
    if all(r.offline for r in done):
        pytest.skip(f"pip's index cannot be reached from here ({done[0].error[-200:]})")
    return {r.platform: r for r in done}


@pytest.mark.network
@pytest.mark.parametrize("platform, python", CASES)
def test_the_extras_resolve(resolved, platform, python):
    r = resolved[platform]
    assert not r.error, f"{platform} Python {python}: {r.error}"
    v = r.versions
    tf = "tensorflow" if platform == "macos-arm64" else "tensorflow-cpu"     # no tensorflow-cpu wheel for macOS
    other = {"tensorflow", "tensorflow-cpu"} - {tf}
    assert tf in v and not other & set(v), sorted(v)
    assert v[tf] == pin(ROOT / "pyproject.toml", "tf", tf).split("==")[1].split(";")[0].strip()
    assert v["torch"] == pin(ROOT / "pyproject.toml", "torch", "torch").split("==")[1]
    assert v["keras"].startswith("3.") and v["nbgrader"].startswith("0.9.")
    # PyPI's torch is CPU-only on macOS and Windows; on Linux it brings CUDA (the README's CPU index line)
    assert (r.cuda > 0) == (platform == "linux-x86_64"), r.shown()


def test_the_readme_gives_one_install_command_per_platform():
    """The student section's commands (a text block: tests/test_readme_commands.py runs only this machine's)
    name extras the package has, resolved above, and PyTorch's CPU index on Linux only."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Students: install on your laptop\n.*?```text\n(.*?)```", text, re.S).group(1)
    lines = block.splitlines()
    heads = [line for line in lines if line.startswith("# ")]
    commands = [line for line in lines if "pip install" in line]
    assert [h.split()[1] for h in heads] == ["Linux", "macOS", "Windows"] and len(commands) == 3, block
    for platform, command in zip(platforms.PLATFORMS, commands):
        extras = re.search(r'"\.\[([a-z,-]+)\]"', command).group(1).split(",")
        assert set(extras) <= {"tf", "torch", "grading"}, command       # what test_the_extras_resolve proves
        requirements(ROOT / "pyproject.toml", extras)                  # KeyError for an extra there is not
        cpu_index = "--extra-index-url https://download.pytorch.org/whl/cpu" in command
        assert cpu_index == (platform == "linux-x86_64"), command
