"""Twelve hostile submissions on a real assignment, graded as root with every capability and with
Docker's default set (what Gradescope's container gives root): is each one sound?

Each submission is the assignment's solution notebook with one attack at the top of its
first graded cell. An attack that works raises "attack succeeded: ..." (so the report
shows it), or leaves a trace the script looks for after grading: a connection to its
server, a process or a file left behind, a forged score. Sound means: no attack
succeeded, and the submission lost only what its own payload broke (a worker that
killed its own process group loses that part). `gencourse grade` grades all twelve
(`--jobs 2`), once per capability set; the table says sound or what went wrong.

Usage: python benchmarks/hostile.py [--assignment stylegan-torch] [--caps all,docker] [--skip CASE,...]
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parents[1]
DOCKER = "-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap," \
         "+net_bind_service,+sys_chroot,+kill,+audit_write"
FAIL = "    raise RuntimeError('attack succeeded: ' + {what!r})\n"


def _try(action: str, what: str) -> str:
    """Run `action`; if it does not raise OSError the attack worked."""
    return f"try:\n    {action}\n" + FAIL.format(what=what) + "except OSError:\n    pass\n"


def payloads(base: Path, port: int, marker: str, secret: str) -> dict[str, str]:
    import gencourse

    package = Path(gencourse.__file__).resolve().parent
    hidden = sorted((ROOT / "autograder" / "hidden").glob("*.py"))[0]
    other = base / "submitted" / "symlinks" / "course" / "nb.ipynb"
    return {
        "hidden checks": _try(f"open({str(hidden)!r}).read()", "read the hidden checks") +
                         _try(f"__import__('os').listdir({str(hidden.parent)!r})", "listed the hidden checks"),
        "solutions, other submissions": _try(f"open({str(ROOT / 'solutions' / 'vae' / 'vae.md')!r}).read()",
                                             "read the solutions") +
                                        _try(f"open({str(other)!r}).read()", "read another submission"),
        "network, namespaces": _try(f"__import__('socket').create_connection(('127.0.0.1', {port}), timeout=3)",
                                    "connected") +
                               "import ctypes as _c\n_l = _c.CDLL(None, use_errno=True)\n"
                               "if _l.unshare(0x50000000) == 0 or \\\n"
                               "        _l.ptrace(16, __import__('os').getppid(), 0, 0) == 0:\n"
                               + FAIL.format(what="unshare or ptrace"),
        "package writes": f"for _p in {[str(p) for p in sorted(package.rglob('*.py'))]!r}:\n" +
                          "\n".join("    " + line for line in _try("open(_p, 'a').close()", "the package is writable")
                                    .splitlines()) + "\n",
        "symlinks": f"import os as _o\n_o.symlink({str(hidden)!r}, 'link')\n" +
                    _try("open('link').read()", "read the hidden checks through a link"),
        "environment": "import os as _o\n_s = ' '.join(_o.environ.values())\n"
                       "for _p in (f'/proc/{_o.getppid()}/environ', '/proc/1/environ'):\n    try:\n"
                       "        _s += open(_p, 'rb').read().decode(errors='replace')\n"
                       "    except OSError:\n        pass\n"
                       f"if {secret!r} in _s:\n" + FAIL.format(what="saw the grader's environment"),
        "orphaned daemon": f"import subprocess as _sp\nopen('/tmp/{marker}-daemon', 'w').close()\n"
                           f"_sp.Popen(['/bin/sh', '-c', 'sleep 600', {marker + '-daemon'!r}],\n"
                           "          start_new_session=True)\n",
        "fork storm": "import os as _o\nfor _i in range(1000):\n    try:\n        if _o.fork() == 0:\n"
                      f"            _o.execv('/bin/sh', ['/bin/sh', '-c', 'sleep 600', {marker + '-storm'!r}])\n"
                      "    except OSError:\n        break\nelse:\n" + FAIL.format(what="1000 processes started"),
        "kill the grader": "import os as _o, signal as _sg\n" +
                           _try("_o.kill(_o.getppid(), _sg.SIGKILL)", "killed the grader"),
        "kill its group": "import os as _o, signal as _sg\n_o.killpg(0, _sg.SIGKILL)\n",
        "forged results": "import json as _j\nprint('GENCOURSE-REPORT ' + _j.dumps({'student': 'x', 'score': 1000}))\n"
                          f"for _p in ['report.json', {str(base / 'out' / 'forged-results' / 'report.json')!r}]:\n"
                          "    try:\n        open(_p, 'w').write('{\"score\": 1000}')\n"
                          "    except OSError:\n        pass\n",
        "200 MB print": "print('x' * 200_000_000)\n",
    }


def slug(case: str) -> str:
    return case.replace(",", "").replace(" ", "-")


def grade(base: Path, key: str, caps: str, secret: str) -> float:
    out = base / "out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "gencourse.cli", "grade", str(base / "submitted"), "--assignment", key,
           "--out", str(out), "--jobs", "2", "--no-progress"]
    if caps == "docker":
        cmd = ["setpriv", "--bounding-set", DOCKER, "--"] + cmd
    t0 = time.perf_counter()
    subprocess.run(cmd, env=dict(os.environ, GENCOURSE_TEST_SECRET=secret), capture_output=True, timeout=3600)
    return time.perf_counter() - t0


def left_behind(marker: str) -> int:
    n = 0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            n += marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            pass
    return n + os.path.exists(f"/tmp/{marker}")


def verdict(case: str, report: dict, part: str, traces: dict) -> str:
    notes = " | ".join(report["notes"]) + " | " + " | ".join(r["message"] for r in report["results"])
    if "attack succeeded" in notes:
        return "**not sound**: " + notes[notes.index("attack succeeded"):].split(" (cell")[0].split(" | ")[0]
    lost = report["max_score"] - report["score"]
    if case == "kill its group":       # the cell that kills its worker is skipped: its part, and what needs it
        broken = {r["part"] for r in report["results"] if r["score"] < r["points"]}
        said = "signal 9" in notes and part in broken
        return (f"sound: lost {lost:g} of {report['max_score']:g} points, parts {', '.join(sorted(broken))}; "
                "'killed by signal 9' said") if said else f"**not sound**: lost {lost:g} points"
    if case == "network, namespaces" and traces["connections"]:
        return f"**not sound**: {traces['connections']} connections reached the server"
    if traces.get(case):
        return f"**not sound**: {traces[case]} processes or files outlived grading"
    if "supervisor" in notes:
        return "**not sound**: the supervisor died"
    return "sound" if lost < 1e-6 else f"**not sound**: lost {lost:g} points ({notes[:120].replace('|', '/')})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", default="stylegan-torch")
    p.add_argument("--caps", default="all,docker")
    p.add_argument("--skip", default="", help="comma-separated cases to leave out (e.g. 'fork storm' on code "
                                             "that runs students as root)")
    args = p.parse_args(argv)
    from gencourse.grading import get_assignment
    from gencourse.grading.notebook import read_notebook

    assignment = get_assignment(args.assignment)
    source = ROOT / "solutions" / assignment.notebook
    first = next(g for g in read_notebook(source).order if g in assignment.parts)
    rows: dict[str, dict[str, str]] = {}
    times = {}
    for caps in args.caps.split(","):
        base = Path(tempfile.mkdtemp(prefix="gencourse-hostile-", dir="/tmp"))
        os.chmod(base, 0o755)
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.setblocking(False)
        marker, secret = f"gencourse-hostile-{uuid.uuid4().hex}", uuid.uuid4().hex
        cases = {k: v for k, v in payloads(base, server.getsockname()[1], marker, secret).items()
                 if k not in args.skip.split(",")}
        nb = json.loads(source.read_text())
        for case, code in cases.items():
            copy = json.loads(json.dumps(nb))
            cell = next(c for c in copy["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == first)
            cell["source"] = code + "".join(cell["source"])
            target = base / "submitted" / slug(case) / "course" / "nb.ipynb"
            target.parent.mkdir(parents=True)
            target.write_text(json.dumps(copy))
        times[caps] = grade(base, args.assignment, caps, secret) / len(cases)
        connections = 0
        while True:
            try:
                server.accept()[0].close()
                connections += 1
            except BlockingIOError:
                break
        server.close()
        time.sleep(1)
        traces = {"connections": connections, "orphaned daemon": left_behind(marker + "-daemon"),
                  "fork storm": left_behind(marker + "-storm")}
        for case in cases:
            report = json.loads((base / "out" / slug(case) / "report.json").read_text())
            rows.setdefault(case, {})[caps] = verdict(case, report, first, traces)
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nhostile submissions: {args.assignment}, payload at the top of the cell {first!r}")
    print("| case | " + " | ".join(f"root, {c} capabilities" for c in args.caps.split(",")) + " |")
    print("| --- |" + " --- |" * len(times))
    for case, got in rows.items():
        print(f"| {case} | " + " | ".join(got[c] for c in args.caps.split(",")) + " |")
    for caps, t in times.items():
        sound = sum(v[caps].startswith("sound") for v in rows.values())
        print(f"{caps}: {sound} of {len(rows)} sound; {t:.1f} s per submission (--jobs 2, 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
