"""The isolated grader on a toy numpy assignment: honest, untouched and hostile submissions.

Each hostile submission is a small notebook written here; it must get the
points it earns, a clear message for the part it broke, full marks for its
other parts, and never take the grader down.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "grading_fixtures"
sys.path.insert(0, str(FIXTURES))

import grading_toy as toy  # noqa: E402

from gencourse.grading import cli as commands  # noqa: E402
from gencourse.grading import inprocess  # noqa: E402
from gencourse.grading import Assignment, Check, Verdict, register  # noqa: E402
from gencourse.grading.batch import grade_batch  # noqa: E402
from gencourse.grading.grade import grade_notebook, student_id  # noqa: E402
from gencourse.grading.report import report_from_dict, report_to_dict  # noqa: E402
from gencourse.grading.sandbox import Limits  # noqa: E402

ROOT = os.geteuid() == 0 and os.environ.get("GENCOURSE_GRADING_UNPRIVILEGED", "") in ("", "0")
# CAP_SYS_ADMIN (bit 21) gives namespaces; without it (Docker's capability set) modes and the filter hold
ADMIN = ROOT and sys.platform.startswith("linux") and bool(
    int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff:")), 16) >> 21 & 1)
as_root = pytest.mark.skipif(not ROOT, reason="this isolation needs root")
FULL = {"square": 3.0, "normalize": 4.0, "scale": 1.0}       # visible + hidden points per part


def limits(**changes) -> Limits:
    base = dict(cpu_seconds=1, step_seconds=3, startup_seconds=60, total_seconds=120,
                processes=64, memory_mb=512, file_mb=16, max_workers=6)
    base.update(changes)
    return Limits(**base)


@pytest.fixture
def hidden(tmp_path):
    d = tmp_path / "hidden"
    d.mkdir()
    (d / "toy.py").write_text(toy.HIDDEN_CHECKS)
    return d


def grade(tmp_path, hidden, parts=None, name="student", lim=None, **nb):
    path = toy.make_notebook(tmp_path / "subs" / f"{name}.ipynb", parts, **nb)
    return grade_notebook(path, toy.KEY, hidden_dir=hidden, solutions_dir=toy.SOLUTIONS, limits=lim or limits())


def per_part(report) -> dict[str, float]:
    out = {p: 0.0 for p in FULL}
    for r in report.results:
        out[r.part] += r.score
    return out


def messages(report, part) -> str:
    return " | ".join(r.message for r in report.results if r.part == part)


def test_correct_submission_gets_full_marks(tmp_path, hidden):
    report = grade(tmp_path, hidden)
    assert report.score == report.max_score == 8.0
    assert report.notes == []
    assert [r.visible for r in report.results] == [True, True, True, False, False]
    text = " ".join(report.isolation)
    assert "own session" in text and "512 MB" in text
    if sys.platform.startswith("linux"):
        assert report.layers == (["user", "seccomp", "mounts", "netns"] if ADMIN else
                                 ["user", "seccomp"] if ROOT else ["seccomp"])
    if ROOT:
        assert ("network: own namespace (no network)" if ADMIN else
                "network: none (the seccomp filter refuses every socket but Unix ones)") in report.isolation
        assert any(line.startswith("user: an unprivileged user id") for line in report.isolation)


def test_untouched_notebook_is_not_implemented_yet(tmp_path, hidden):
    report = grade(tmp_path, hidden, dict(toy.TODO))
    assert report.score == 0.0
    assert all(r.message.startswith("not implemented yet") for r in report.results)
    assert not any("grader" in n for n in report.notes)


def test_visible_only_and_setup_from_the_source_notebook(tmp_path, hidden):
    # The submission's own setup cell sets SCALE wrong; the trusted one from solutions/ is run.
    path = toy.make_notebook(tmp_path / "s.ipynb", setup="import numpy as np\nSCALE = -1.0\n")
    report = grade_notebook(path, toy.KEY, visible_only=True, solutions_dir=toy.SOLUTIONS, limits=limits())
    assert report.score == report.max_score == 6.0
    assert all(r.visible for r in report.results)


HOSTILE = {
    "endless_loop": ({"square": "def square(x):\n    while True:\n        pass\n"},
                     "square", ("CPU time limit", "timed out")),
    "sleeping_forever": ({"normalize": "import time\ndef normalize(x):\n    time.sleep(1000)\n"},
                         "normalize", ("timed out after 3 s",)),
    "memory_bomb": ({"square": "def square(x):\n    hog = []\n    while True:\n"
                               "        hog.append(bytearray(50_000_000))\n"},
                    "square", ("MemoryError", "timed out")),
    "huge_array": ({"normalize": "def normalize(x):\n    return np.ones((1 << 40,))\n"},
                   "normalize", ("allocate",)),
    "fork_bomb": ({"scale": "import os\ndef scale(x):\n    while True:\n        try:\n            os.fork()\n"
                            "        except OSError:\n            pass\n"},
                  "scale", ("timed out", "CPU time", "killed")),
    "sys_exit": ({"square": "import sys\ndef square(x):\n    sys.exit(3)\n"}, "square", ("sys.exit(3)",)),
    "os_exit": ({"normalize": "import os\ndef normalize(x):\n    os._exit(3)\n"}, "normalize", ("os._exit(3)",)),
    "segfault": ({"scale": "import ctypes\ndef scale(x):\n    return ctypes.string_at(0)\n"},
                 "scale", ("segmentation fault",)),
    "always_equal": ({"square": "class Same:\n    def __eq__(self, other):\n        return True\n"
                                "    __hash__ = object.__hash__\n"
                                "def square(x):\n    return Same()\n"}, "square", ("not numeric",)),
    "nan_and_shape": ({"square": "def square(x):\n    return x * np.nan\n",
                       "normalize": "def normalize(x):\n    return x.ravel()\n"},
                      "square", ("NaN",)),
    "cell_hangs_when_run": ({"square": "while True:\n    pass\n"}, "square", ("stopped the worker",)),
    "cell_raises_when_run": ({"normalize": "def normalize(x):\n    return x\nraise ValueError('oops')\n"},
                             "normalize", ("raised an error when it was run: ValueError: oops",)),
    "monkeypatches_numpy_and_builtins": (
        {"square": "import builtins, numpy\n"
                   "numpy.allclose = lambda *a, **k: True\nnumpy.isfinite = lambda *a, **k: True\n"
                   "numpy.max = lambda *a, **k: 0.0\nnumpy.abs = lambda a: a * 0\n"
                   "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                   "numpy.lib.format.write_array = lambda *a, **k: None\nnumpy.load = lambda *a, **k: 0\n"
                   "builtins.abs = lambda v: 0\nbuiltins.isinstance = lambda *a: True\n"
                   "builtins.open = None\n"
                   "def square(x):\n    return x * 0 + 1\n"},
        "square", ("wrong values",)),
    "fake_progress_lines": ({"square": "import os, time\ndef square(x):\n"
                                       "    fd = int(os.environ['GENCOURSE_PROGRESS_FD'])\n"
                                       "    for _ in range(40):\n"
                                       "        os.write(fd, b'{\"event\": \"start\", \"kind\": \"call\", "
                                       "\"id\": \"c001-000\"}\\n{\"event\": \"done\"}\\ngarbage\\n')\n"
                                       "        time.sleep(0.25)\n"
                                       "    return x ** 2\n"},
                            "square", ("timed out after 3 s",)),
    "prints_200_MB": ({"square": "def square(x):\n    print('x' * 200_000_000)\n    return x ** 2\n",
                       "normalize": "import os\ndef normalize(x):\n    try:\n"
                                    "        os.write(1, b'y' * 100_000_000)\n    except OSError:\n        pass\n"
                                    "    return (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)\n"},
                      None, ()),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_submission(tmp_path, hidden, case):
    parts, broken, words = HOSTILE[case]
    t0 = time.monotonic()
    report = grade(tmp_path, hidden, parts)
    assert time.monotonic() - t0 < 60
    scores = per_part(report)
    for part, full in FULL.items():
        if part in parts:
            continue
        assert scores[part] == full, (part, report_to_dict(report))
    if broken is None:
        assert report.score == report.max_score, report_to_dict(report)
    else:
        assert scores[broken] == 0.0
        text = messages(report, broken) + " | " + " | ".join(report.notes)
        assert any(w in text for w in words), text
    assert not any(n.startswith("grader error") for n in report.notes), report.notes
    if case == "nan_and_shape":
        assert scores["normalize"] == 0.0 and "shape" in messages(report, "normalize")


def test_deleted_and_retyped_cells(tmp_path, hidden):
    report = grade(tmp_path, hidden, drop=["square"], retype=["scale"])
    scores = per_part(report)
    assert scores == {"square": 0.0, "normalize": 4.0, "scale": 0.0}
    assert any("'square' is missing" in n for n in report.notes)
    assert any("'scale' is a markdown cell" in n for n in report.notes)
    assert "missing" in messages(report, "square")


def test_not_a_notebook_is_graded_zero_with_a_note(tmp_path, hidden):
    path = tmp_path / "broken.ipynb"
    path.write_text("{ this is not json")
    report = grade_notebook(path, toy.KEY, hidden_dir=hidden, solutions_dir=toy.SOLUTIONS, limits=limits())
    assert report.score == 0.0 and report.max_score == 8.0
    assert "not a readable notebook" in report.notes[0]


WORKER_VIEW = """import os, resource
def square(x):
    problems = []
    allowed = {allowed!r}
    extra = sorted(set(os.environ) - allowed)
    if extra:
        problems.append(f"environment has {{extra}}")
    if os.environ["HOME"] != os.getcwd() or sorted(os.listdir(".")) != ["in", "out", "plan.json", "tmp"]:
        problems.append(f"cwd {{os.getcwd()}} holds {{sorted(os.listdir('.'))}}")
    if os.getsid(0) != os.getpid():
        problems.append("not a session leader")
    for name, want in {want!r}.items():
        got = resource.getrlimit(getattr(resource, name))[1]
        if got != want:
            problems.append(f"{{name}} is {{got}}, expected {{want}}")
    if {root!r}:
        if os.getuid() == 0 or os.getgid() == 0 or os.getgroups():
            problems.append(f"uid {{os.getuid()}} gid {{os.getgid()}} groups {{os.getgroups()}}")
        if {admin!r} and set(os.listdir("/tmp")) - {tmp_tops!r}:
            problems.append(f"/tmp is shared: it holds {{sorted(os.listdir('/tmp'))}}")
        for p in ({repo!r} + "/x", "/etc/x", "/tmp/../x"):
            try:
                open(p, "w").close()
                problems.append(f"could write {{p}}")
            except OSError:
                pass
        if {admin!r} and "eth" in open("/proc/net/dev").read():
            problems.append("a network interface is visible")
    if problems:
        raise AssertionError("; ".join(problems))
    return x ** 2
"""


def test_worker_environment_and_limits(tmp_path, hidden):
    lim = limits()
    allowed = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
               "PYTHONNOUSERSITE", "PYTHONPATH", "GENCOURSE_PROGRESS_FD", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
               "TF_CPP_MIN_LOG_LEVEL", "MPLBACKEND", "KERAS_HOME", "MPLCONFIGDIR", "CUDA_VISIBLE_DEVICES",
               "KERAS_BACKEND", "GENCOURSE_QUICK", "MALLOC_MMAP_THRESHOLD_"}
    want = {"RLIMIT_AS": lim.memory_mb * 2**20, "RLIMIT_NOFILE": lim.open_files,
            "RLIMIT_FSIZE": lim.file_mb * 2**20, "RLIMIT_CORE": 0}
    if ROOT:
        want["RLIMIT_NPROC"] = lim.processes
    # A checkout or venv under /tmp is bound back into the worker's private /tmp (read-only);
    # nothing else of the real /tmp (this test's own tmp_path is there) may show.
    tmp_tops = {p.split("/")[2] for p in (str(FIXTURES.parents[1]), sys.prefix, sys.base_prefix)
                if p.startswith("/tmp/")}
    code = WORKER_VIEW.format(allowed=allowed, want=want, root=ROOT, admin=ADMIN, repo=str(FIXTURES.parents[1]),
                              tmp_tops=tmp_tops)
    report = grade(tmp_path, hidden, {"square": code}, lim=lim)
    assert report.score == report.max_score, messages(report, "square")


def test_hidden_checks_are_out_of_reach(tmp_path, hidden):
    target = hidden / "toy.py"
    code = ("import os\ndef square(x):\n    try:\n"
            f"        open({str(target)!r}).read()\n        return x * 0\n"
            "    except OSError:\n        pass\n"
            f"    try:\n        os.listdir({str(hidden)!r})\n        return x * 0\n    except OSError:\n"
            "        return x ** 2\n")
    report = grade(tmp_path, hidden, {"square": code})
    if ROOT:
        assert report.score == report.max_score, report_to_dict(report)
    else:       # a laptop without root: the hidden checks are not there anyway
        assert per_part(report)["normalize"] == FULL["normalize"]


@as_root
def test_no_network(tmp_path, hidden):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = ("import socket\ndef scale(x):\n    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n"
            "        return x * 0\n    except OSError:\n        return 3.0 * x\n")
    try:
        report = grade(tmp_path, hidden, {"scale": code})
    finally:
        server.close()
    assert report.score == report.max_score, report_to_dict(report)


def _marker_processes(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_escaped_processes_are_killed(tmp_path, hidden):
    marker = f"gencourse-escapee-{uuid.uuid4().hex}"
    code = ("import subprocess\ndef normalize(x):\n"
            f"    subprocess.Popen(['/bin/sh', '-c', 'sleep 300', {marker!r}], start_new_session=True)\n"
            "    return (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)\n")
    report = grade(tmp_path, hidden, {"normalize": code})
    assert report.score == report.max_score
    if sys.platform.startswith("linux"):    # own user id, or a subreaper without root: all killed
        deadline = time.monotonic() + 5
        while _marker_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _marker_processes(marker) == []


def test_a_judge_that_raises_is_a_grader_error(tmp_path):
    good = toy.toy_check("square of a vector", "square", 2, (5,), 1)

    def bad_judge(replies):
        raise KeyError("oops")

    def bad_calls():
        raise RuntimeError("no inputs")

    register(Assignment(name="toybug", track="np", notebook="toy/toy.ipynb", probes="grading_toy_probes",
                        setup_cells=["setup"], parts=["square", "normalize", "scale"],
                        checks=[good,
                                Check("broken judge", "normalize", 1, good.calls, bad_judge),
                                Check("broken inputs", "scale", 1, bad_calls, lambda r: Verdict(1, "?")),
                                Check("score out of range", "square", 1, good.calls,
                                      lambda r: Verdict(float("nan"), "?"))],
                        cpu_seconds=2, memory_mb=768))
    path = toy.make_notebook(tmp_path / "s.ipynb")
    report = grade_notebook(path, "toybug-np", solutions_dir=toy.SOLUTIONS, limits=limits())
    assert [r.score for r in report.results] == [2.0, 0.0, 0.0, 0.0]
    assert all("grader error" in r.message for r in report.results[1:])
    assert sum("grader error" in n for n in report.notes) == 3


def test_report_round_trip(tmp_path, hidden):
    report = grade(tmp_path, hidden, {"scale": "def scale(x):\n    return x\n"})
    d = json.loads(json.dumps(report_to_dict(report)))
    back = report_from_dict(d)
    assert back == report and d["score"] == 7.0 and d["max_score"] == 8.0


def test_student_ids():
    assert student_id("/c/submitted/alice/vae/vae_tf.ipynb") == "alice"
    assert student_id("/c/somewhere/bob_vae.ipynb") == "bob_vae"


FAKER = ("import json, os\ndef square(x):\n"
         "    for p in ['report.json', 'results.json', {a!r}, {b!r}]:\n"
         "        try:\n            os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n"
         "            with open(p, 'w') as f:\n"
         "                json.dump({{'student': 'x', 'score': 1000}}, f)\n"
         "        except OSError:\n            pass\n"
         "    return x ** 2\n")
KILLER = ("import os, signal\ndef normalize(x):\n    try:\n        os.kill(os.getppid(), signal.SIGKILL)\n"
          "    except OSError:\n        pass\n"
          "    return (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)\n")


def _batch(tmp_path, out, names_parts):
    for name, parts in names_parts.items():
        toy.make_notebook(tmp_path / "submitted" / name / "toy" / "toy.ipynb", parts)
    return tmp_path / "submitted"


def test_batch_jobs_skip_and_force(tmp_path, hidden, capsys):
    out = tmp_path / "out"
    subs = _batch(tmp_path, out, {
        "alice": None,
        # As root it cannot touch another student's folder; without root nothing stops that, so
        # there it only plants files in its own folder, which the grader's files replace.
        "bob": {"square": FAKER.format(a=str(out / "bob" / "report.json"),
                                       b=str(out / ("alice" if ROOT else "bob") / "results.json")),
                "normalize": KILLER},
        "carol": dict(toy.TODO),
    })
    lim = limits()
    args = ["grade", str(subs), "--assignment", toy.KEY, "--out", str(out), "--jobs", "2",
            "--hidden", str(hidden), "--solutions", str(toy.SOLUTIONS), "--no-progress"]
    # first through the function with the toy's test limits; reruns through the command
    reports = grade_batch([subs], toy.KEY, out, jobs=2, hidden_dir=hidden, solutions_dir=toy.SOLUTIONS,
                          progress=False, limits=lim)
    assert set(reports) == {"alice", "bob", "carol"}
    assert reports["alice"].score == 8.0 and reports["carol"].score == 0.0
    for sid, r in reports.items():
        on_disk = json.loads((out / sid / "report.json").read_text())
        assert on_disk["format"] == "gencourse-report/1" and on_disk["score"] == r.score
    if ROOT:    # the killer cannot signal its supervisor, the faker cannot write there
        assert reports["bob"].score == 8.0, report_to_dict(reports["bob"])
    mtimes = {s: (out / s / "report.json").stat().st_mtime_ns for s in reports}
    time.sleep(0.05)
    assert commands.main(args) == 0                      # a rerun skips the graded ones
    assert {s: (out / s / "report.json").stat().st_mtime_ns for s in reports} == mtimes
    assert "3 reports" in capsys.readouterr().out
    (out / "carol" / "report.json").unlink()
    again = grade_batch([subs], toy.KEY, out, jobs=2, hidden_dir=hidden, solutions_dir=toy.SOLUTIONS,
                        progress=False, limits=lim)
    assert again["carol"].score == 0.0
    assert (out / "alice" / "report.json").stat().st_mtime_ns == mtimes["alice"]
    assert commands.main(args + ["--force"]) == 0        # --force regrades every one
    for sid in reports:
        assert (out / sid / "report.json").stat().st_mtime_ns != mtimes[sid]
    assert json.loads((out / "alice" / "report.json").read_text())["score"] == 8.0


def test_killing_the_parent_costs_only_its_own_grade(tmp_path, hidden, monkeypatch):
    # Without root (or forced unprivileged) the worker can kill its supervisor.
    monkeypatch.setenv("GENCOURSE_GRADING_UNPRIVILEGED", "1")
    out = tmp_path / "out"
    subs = _batch(tmp_path, out, {"alice": None, "bob": {"normalize": KILLER}, "dave": None})
    reports = grade_batch([subs], toy.KEY, out, jobs=2, hidden_dir=hidden, solutions_dir=toy.SOLUTIONS,
                          progress=False, limits=limits())
    assert reports["alice"].score == reports["dave"].score == 8.0
    assert reports["bob"].score == 0.0 and reports["bob"].max_score == 8.0
    assert "supervisor" in reports["bob"].results[0].message
    assert json.loads((out / "bob" / "report.json").read_text())["score"] == 0.0


def test_check_command_infers_the_assignment(tmp_path, capsys, monkeypatch):
    """The assignment read from the notebook; the exit status 0 on full marks, 1 when points are lost
    (what a pre-submit hook or a CI step tests)."""
    monkeypatch.setenv("GENCOURSE_SOLUTIONS", str(toy.SOLUTIONS))
    assert commands.main(["check", str(toy.make_notebook(tmp_path / "full.ipynb"))]) == 0
    assert "total: 6 / 6 points" in capsys.readouterr().out
    path = toy.make_notebook(tmp_path / "mine.ipynb", {"scale": "def scale(x):\n    return x\n"})
    assert commands.main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "[2/2] square of a vector: correct" in out and "[0/1] scale by SCALE: wrong values" in out
    assert "total: 5 / 6 points" in out and "hidden" not in out


def test_run_visible_in_process(capsys):
    ns: dict = {}
    exec(toy.SETUP + toy.SOLUTION["square"], ns)
    inprocess.run_visible(toy.KEY, "square", ns)
    assert "ok [2/2] square of a vector" in capsys.readouterr().out
    exec("def square(x):\n    return x * 2\n", ns)
    with pytest.raises(AssertionError, match="wrong values"):
        inprocess.run_visible(toy.KEY, "square", ns)
    exec(toy.TODO["normalize"], ns)
    with pytest.raises(AssertionError, match="not implemented yet"):
        inprocess.run_visible(toy.KEY, "normalize", ns)



@as_root
def test_no_free_user_id_means_no_worker(tmp_path, hidden, monkeypatch):
    from gencourse.grading.sandbox import processes

    monkeypatch.setattr(processes.JobUser, "acquire", lambda self: False)
    report = grade(tmp_path, hidden)
    assert report.score == 0.0 and report.layers == []
    assert all("no free user id" in r.message for r in report.results)
