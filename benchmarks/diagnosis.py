"""Diagnosis on the project's planted mistakes: the issue-23 measures, per key, from the tests' own plants.

Grades every planted notebook and correct-alternative notebook the assignment tests define
(tests/test_*_assignment.py: each plant with the hint its message must hold, per check) through
the isolated grader, without the slow training checks (the keys' fast copies, as the tests grade
them), and prints per key:

- planted: planted mistakes, one per (notebook, part) with checks expected to lose points, and the
  parts with fewer than two;
- own part: the share that lost points on their own part;
- named: the share whose part lost exactly its expected checks, each with its hint;
- wrong cause: lost checks of a planted part whose message holds another plant's hint, not its own;
- elsewhere: checks of unplanted parts that lost points;
- alternatives: checks the correct-alternative notebooks lost;
- raw text: lost messages that carry a framework's error text;
- again: whether the first planted notebook, graded a second time in a fresh worker, gave the same
  report (every check's points and message).

Usage: python benchmarks/diagnosis.py [--keys vae-tf ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["vae-tf", "vae-torch", "cyclegan-tf", "cyclegan-torch", "stylegan-tf", "stylegan-torch"]
RAW = re.compile(r"raised an error|Traceback|\b[A-Z]\w*(Error|Exception)\b|grad_fn|convert a value|tf\.function")


def vae_notebooks(track: str, tmp: Path):
    import test_vae_assignment as t

    plants = [(name, t.planted(track, tmp, name, *edits), expected)
              for name, (edits, expected) in t.mistakes(track).items()]
    return plants, [t.planted(track, tmp, "styles", *t.other_styles(track))]


def cyclegan_notebooks(track: str, tmp: Path):
    import test_cyclegan_assignment as t

    plants = [(pid, t.plant(track, tmp / f"{pid}.ipynb", t._bodies(track, cells)),
               {**expected, **t.TRACK_HINTS.get((pid, track), {})}) for pid, (cells, expected) in t.PLANTS.items()]
    styles = {cell: "other_style" for cell in ("generator", "adversarial", "semantic_loss", "training_step")}
    styles["discriminator"] = {"torch": "other_style"}
    return plants, [t.plant(track, tmp / "style.ipynb", t._bodies(track, styles))]


def stylegan_notebooks(track: str, tmp: Path):
    import test_stylegan_assignment as t

    plants = [(pid, t.plant(track, tmp / f"{pid}.ipynb", t.PLANTS[pid][0](track)), t.PLANTS[pid][1])
              for tr, pid in t.PLANTED if tr == track]
    styles = [t.plant(track, tmp / "styles.ipynb", t.OTHER_STYLES[track])] if track in t.OTHER_STYLES else []
    return plants, styles


def measure(key: str, tmp: Path) -> dict:
    import assignment_helpers as helpers
    from gencourse.grading import get_assignment
    from gencourse.grading.grade import grade_notebook

    name, track = key.rsplit("-", 1)
    plants, styles = {"vae": vae_notebooks, "cyclegan": cyclegan_notebooks,
                      "stylegan": stylegan_notebooks}[name](track, tmp)
    fast = helpers.fast_key(key)
    hints = {h for *_, expected in plants for h in expected.values()}
    m = Counter()
    per_part = Counter()
    first = None
    for pid, notebook, expected in plants:
        report = grade_notebook(notebook, fast, student=pid)
        results = {r.name: r for r in report.results}
        first = first or (notebook, pid, [(r.name, r.score, r.message) for r in report.results])
        planted = {results[c].part for c in expected if c in results}
        lost = [r for r in report.results if r.score < r.points]
        m["raw"] += sum(bool(RAW.search(r.message)) for r in lost)
        m["elsewhere"] += sum(r.part not in planted for r in lost)
        for r in lost:
            if RAW.search(r.message) or r.part not in planted:
                print(f"    {'raw text' if RAW.search(r.message) else 'elsewhere'}: {r.name}: {r.message[:200]}")
        for part in planted:
            per_part[part] += 1
            own = {c: h for c, h in expected.items() if results.get(c) and results[c].part == part}
            part_lost = [r for r in lost if r.part == part]
            m["planted"] += 1
            m["own"] += bool(part_lost)
            m["named"] += ({r.name for r in part_lost} == set(own)
                           and all(results[c].score == 0 and h in results[c].message for c, h in own.items()))
            m["wrong"] += sum(1 for r in part_lost if (r.name not in own or own[r.name] not in r.message)
                              and any(h in r.message for h in hints - {own.get(r.name)}))
        print(f"  {key} {pid}: {report.score:g}/{report.max_score:g}, planted parts {sorted(planted)}", flush=True)
    for notebook in styles:
        report = grade_notebook(notebook, fast, student="styles")
        lost = [r for r in report.results if r.score < r.points]
        m["alternatives"] += len(lost)
        m["raw"] += sum(bool(RAW.search(r.message)) for r in lost)
        print(f"  {key} styles: {report.score:g}/{report.max_score:g}" +
              "".join(f"\n    lost {r.name}: {r.message[:160]}" for r in lost), flush=True)
    notebook, pid, once = first
    again = [(r.name, r.score, r.message) for r in grade_notebook(notebook, fast, student=pid).results]
    m["same_again"] = int(again == once)
    m["style_notebooks"] = len(styles)
    m["thin_parts"] = sorted(p for p in {c.part for c in get_assignment(key).checks} if per_part[p] < 2)
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", nargs="+", default=KEYS, choices=KEYS)
    p.add_argument("--out", type=Path, default=None, help="where the planted notebooks go (default: a temp folder)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for key in args.keys:
            tmp = (args.out or Path(scratch)) / key
            tmp.mkdir(parents=True, exist_ok=True)
            m = measure(key, tmp)
            rows.append(f"| {key} | {m['planted']} | {m['own']}/{m['planted']} | {m['named']}/{m['planted']} | "
                        f"{m['wrong']} | {m['elsewhere']} | {m['alternatives']} ({m['style_notebooks']} nb) | "
                        f"{m['raw']} | {'yes' if m['same_again'] else 'NO'} | {', '.join(m['thin_parts']) or '-'} |")
            print(rows[-1], flush=True)
    print("| key | planted | own part | named | wrong cause | elsewhere | alternatives losing | raw text | "
          "same twice | parts with < 2 plants |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
