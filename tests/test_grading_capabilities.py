"""The hostile cases graded as root with every capability and with Docker's default set.

Gradescope's container gives root Docker's default capabilities: no CAP_SYS_ADMIN,
so no namespaces. There the borrowed user, file modes and the seccomp filter must
hold the same line. Twelve hostile parts in four notebooks are graded by
`grade_batch` in a grader process started under each capability set (`setpriv
--bounding-set`); both must give the same points and messages, and report.json
must list the layers each setting gives (`expected_layers`). The course's files
sit in a folder other users could enter, so that only the grader's protection
(covering, or taking the permissions of other users) keeps them out.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "grading_fixtures"
sys.path.insert(0, str(FIXTURES))

import grading_toy as toy  # noqa: E402

import gencourse  # noqa: E402
from gencourse.grading.sandbox import DOCKER_CAPS, LAYERS, expected_layers  # noqa: E402

ROOT = os.geteuid() == 0 and os.environ.get("GENCOURSE_GRADING_UNPRIVILEGED", "") in ("", "0")
ADMIN = ROOT and sys.platform.startswith("linux") and bool(   # CAP_SYS_ADMIN, bit 21 of CapEff
    int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff:")), 16) >> 21 & 1)
SETPRIV = shutil.which("setpriv")
SECRET = f"gencourse-secret-{uuid.uuid4().hex}"
NORMALIZE = "    return (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)\n"
PACKAGE = Path(gencourse.__file__).resolve().parent


def hostile(base: Path, port: int, marker: str) -> dict[str, dict[str, str]]:
    """Four notebooks, one attack per part; an attack that works returns a wrong answer."""
    hidden, other = base / "hidden" / "toy.py", base / "submitted" / "alice" / "toy" / "toy.ipynb"
    solution = toy.SOLUTIONS / "toy" / "toy.ipynb"
    modules = sorted(str(p) for p in PACKAGE.rglob("*.py"))
    return {
        "reader": {   # the hidden checks; another submission and the solutions; the grader's environment
            "square": f"import os\ndef square(x):\n    try:\n        open({str(hidden)!r}).read()\n"
                      "        return x * 0\n    except OSError:\n        pass\n"
                      f"    try:\n        os.listdir({str(hidden.parent)!r})\n        return x * 0\n"
                      "    except OSError:\n        return x ** 2\n",
            "normalize": f"def normalize(x):\n    for p in [{str(other)!r}, {str(solution)!r}]:\n        try:\n"
                         "            open(p).read()\n            return x\n        except OSError:\n            pass\n"
                         + NORMALIZE,
            "scale": "import os\ndef scale(x):\n    seen = ' '.join(os.environ.values())\n"
                     "    for p in (f'/proc/{os.getppid()}/environ', '/proc/1/environ'):\n        try:\n"
                     "            seen += open(p, 'rb').read().decode(errors='replace')\n"
                     "        except OSError:\n            pass\n"
                     f"    return x if {SECRET!r} in seen else SCALE * x\n",
        },
        "writer": {   # the installed package and the checkout; forged reports; links to the hidden checks
            "square": f"def square(x):\n    for p in {modules + [str(PACKAGE.parents[1] / 'pyproject.toml')]!r}:\n"
                      "        try:\n            open(p, 'a').close()\n            return x * 0\n"
                      "        except OSError:\n            pass\n    return x ** 2\n",
            "normalize": "import json, os\ndef normalize(x):\n"
                         f"    for p in [{str(base / 'out' / 'writer' / 'report.json')!r}, "
                         f"{str(base / 'out' / 'alice' / 'results.json')!r}, 'report.json']:\n"
                         "        try:\n            with open(p, 'w') as f:\n"
                         "                json.dump({'student': 'writer', 'score': 1000}, f)\n"
                         "        except OSError:\n            pass\n" + NORMALIZE,
            "scale": f"import os\ndef scale(x):\n    os.symlink({str(hidden)!r}, 'link')\n    try:\n"
                     "        open('link').read()\n        return x\n    except OSError:\n        return SCALE * x\n",
        },
        "killer": {   # the grader, its own group, a daemon and a file left behind
            "square": "import os, signal\ndef square(x):\n    try:\n        os.kill(os.getppid(), signal.SIGKILL)\n"
                      "    except OSError:\n        pass\n    return x ** 2\n",
            "normalize": "import os, signal\ndef normalize(x):\n    os.killpg(0, signal.SIGKILL)\n" + NORMALIZE,
            "scale": "import os, subprocess\ndef scale(x):\n"
                     f"    open('/tmp/{marker}', 'w').close()\n"
                     f"    subprocess.Popen(['/bin/sh', '-c', 'sleep 300', {marker!r}], start_new_session=True)\n"
                     "    return SCALE * x\n",
        },
        "system": {   # the network; a fork storm; namespaces, tracing and a 200 MB print
            "square": f"import socket\ndef square(x):\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                      "    return x * 0\n",
            "normalize": "import os\ndef normalize(x):\n    while True:\n        try:\n            os.fork()\n"
                         "        except OSError:\n            pass\n",
            "scale": "import ctypes, os\ndef scale(x):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
                     "    calls = [lambda: libc.unshare(0x10000000 | 0x40000000),\n"
                     "             lambda: libc.ptrace(16, os.getppid(), 0, 0),\n"
                     "             lambda: libc.mount(b'none', b'/mnt', b'tmpfs', 0, None)]\n"
                     "    got = [(call(), ctypes.get_errno()) for call in calls]\n"
                     "    print('x' * 200_000_000)\n"
                     "    return SCALE * x if got == [(-1, 1)] * 3 else x\n",
        },
    }


# (student, part) -> words of the message when the part loses its points; every other part earns them all
BROKEN = {("killer", "normalize"): ("killed by signal 9",), ("system", "square"): ("without network",),
          ("system", "normalize"): ("CPU time", "timed out", "killed")}

DRIVER = """import json, sys
sys.path.insert(0, {fixtures!r})
import grading_toy as toy
from gencourse.grading.batch import grade_batch
from gencourse.grading.sandbox import Limits
reports = grade_batch([{subs!r}], toy.KEY, {out!r}, jobs=2, hidden_dir={hidden!r}, solutions_dir=toy.SOLUTIONS,
                      progress=False, limits=Limits(cpu_seconds=1, step_seconds=3, startup_seconds=60,
                      total_seconds=120, processes=64, memory_mb=512, file_mb=16, max_workers=6))
print(json.dumps(sorted(reports)))
"""


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not ROOT, reason="the capability sets differ only for root")
@pytest.mark.parametrize("caps", ["all", "docker"])
def test_hostile_cases_under_both_capability_sets(caps):
    if caps == "docker" and SETPRIV is None:
        pytest.skip("setpriv (util-linux) is not installed")
    if caps == "all" and not ADMIN:
        pytest.skip("this process has no CAP_SYS_ADMIN (it runs under a reduced capability set already)")
    base = Path(tempfile.mkdtemp(prefix="gencourse-caps-", dir="/tmp"))
    server = socket.socket()
    try:
        os.chmod(base, 0o755)                     # other users may enter: the grader must close what matters
        hidden = base / "hidden"
        hidden.mkdir(mode=0o755)
        (hidden / "toy.py").write_text(toy.HIDDEN_CHECKS)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        marker = f"gencourse-daemon-{uuid.uuid4().hex}"
        notebooks = {"alice": None, **hostile(base, server.getsockname()[1], marker)}
        for name, parts in notebooks.items():
            toy.make_notebook(base / "submitted" / name / "toy" / "toy.ipynb", parts)
        for d in base.rglob("*"):
            os.chmod(d, 0o755 if d.is_dir() else 0o644)
        code = DRIVER.format(fixtures=str(FIXTURES), subs=str(base / "submitted"), out=str(base / "out"),
                             hidden=str(hidden))
        prefix = [SETPRIV, "--bounding-set", ",".join(["-all", *[f"+{c}" for c in DOCKER_CAPS]]), "--"]
        cmd = (prefix if caps == "docker" else []) + [sys.executable, "-c", code]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                              env=dict(os.environ, GENCOURSE_TEST_SECRET=SECRET))
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == sorted(notebooks)
        want_layers = expected_layers(DOCKER_CAPS) if caps == "docker" else list(LAYERS)
        assert want_layers == (["user", "seccomp"] if caps == "docker" else ["user", "seccomp", "mounts", "netns"])
        reports = {s: json.loads((base / "out" / s / "report.json").read_text()) for s in notebooks}
        for student, report in reports.items():
            for r in report["results"]:
                words = BROKEN.get((student, r["part"]))
                if words is None:
                    assert r["score"] == r["points"], (student, r)
                else:
                    text = r["message"] + " ".join(report["notes"])
                    assert r["score"] == 0.0 and any(w in text for w in words), (student, r)
            assert not any(n.startswith("grader error") for n in report["notes"]), report["notes"]
        for student, report in reports.items():
            assert report["layers"] == want_layers, (student, report["isolation"])
            assert any(line.startswith("isolation layers that applied:") for line in report["isolation"])
        deadline = time.monotonic() + 5
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(marker) == [] and not os.path.exists(f"/tmp/{marker}")
        assert all(os.stat(p).st_mode & 0o007 == 0 for p in (hidden, base / "submitted")) or caps == "all"
    finally:
        server.close()
        shutil.rmtree(base, ignore_errors=True)
