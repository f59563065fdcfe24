"""Issue 20: a graded part that is the package's own earns nothing for that part, whatever the route.

The grader's reading of the cells (grading/integrity.py) is tested without a worker on every route,
two parts of each of the six assignments; the worker's run-time evidence (grading/guard.py) through
a few real gradings with that reading switched off, so that each route is seen at run time alone.
"""

from __future__ import annotations

import ast
import csv
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

from gencourse.grading import get_assignment, integrity
from gencourse.grading.copies import skeleton_lines
from gencourse.grading.grade import grade_notebook
from gencourse.grading.notebook import graded_sources, read_notebook
from gencourse.grading.package_source import module_file
from gencourse.grading.report import feedback_text, write_outputs

from assignment_helpers import fast_key, grader_errors
from test_vae_assignment import grade_ids

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["vae-tf", "vae-torch", "cyclegan-tf", "cyclegan-torch", "stylegan-tf", "stylegan-torch"]
# Two parts per assignment and track: (grade_id, the name it defines, a class?)
PLANTED = {
    "vae-tf": [("kl", "kl_divergence", False), ("sampling", "Sampling", True)],
    "vae-torch": [("kl", "kl_divergence", False), ("encoder", "Encoder", True)],
    "cyclegan-tf": [("cycle_loss", "cycle_consistency_loss", False), ("identity_loss", "identity_loss", False)],
    "cyclegan-torch": [("identity_loss", "identity_loss", False), ("discriminator", "PatchDiscriminator", True)],
    "stylegan-tf": [("truncation", "truncate", False), ("adain", "AdaptiveInstanceNorm", True)],
    "stylegan-torch": [("mixing", "mix_styles", False), ("equalized", "EqualizedLinear", True)],
}
# Each route as a cell: {mod} the solution module, {pkg}.{leaf} the same, {name} the part's name.
ROUTES = {
    "plain import": "from {mod} import {name}\n",
    "alias": "import {mod} as answers\n{name} = answers.{name}\n",
    "wrapper in the skeleton": ("def {name}(*args, **kwargs):\n    from {pkg} import {leaf}\n"
                                "    return {leaf}.{name}(*args, **kwargs)\n"),
    "importlib, built name": ("import importlib\n{name} = getattr(importlib.import_module('.'.join(["
                              "'gen' + 'course', '{topic}', '{track}' + '_mo' + 'dels'])), '{name}')\n"),
    "sys.modules": "import sys\n{name} = vars(sys.modules[{mod!r}])[{name!r}]\n",
    "getattr on a module": "import {pkg} as topic\n{name} = getattr(getattr(topic, '{leaf}'), '{name}')\n",
    "through a trainer's module": "import {pkg}.{track}_track as trainer\n{name} = trainer.{alias}.{name}\n",
    "exec of the source": ("import gencourse as g\nsrc = open(g.__path__[0] + '/{topic}/{track}_models.py').read()\n"
                           "exec(compile(src, 'mine', 'exec'))\n"),
}
CLASS_ROUTES = {
    "subclass": "from {mod} import {name} as Base\n\nclass {name}(Base):\n    pass\n",
    "network holding the package's": ("from {mod} import {name} as Theirs\n\nclass {name}(Theirs.__mro__[1]):\n"
                                      "    def __init__(self, *args, **kwargs):\n        super().__init__()\n"
                                      "        self.inner = Theirs(*args, **kwargs)\n"),
}


def source(key: str) -> Path:
    name, track = key.split("-")
    return ROOT / "solutions" / name / f"{name}_{track}.ipynb"


@lru_cache(maxsize=None)
def cells(key: str) -> tuple[dict, dict]:
    a = get_assignment(key)
    nb = read_notebook(source(key))
    return graded_sources(nb, a.parts)[0], graded_sources(nb, a.setup_cells)[0]


def read(key: str, planted: dict) -> list[integrity.Finding]:
    a = get_assignment(key)
    parts, setup = (dict(c) for c in cells(key))
    skeletons = {gid: skeleton_lines(text) for gid, text in parts.items()}
    return integrity.read_parts({**parts, **planted}, setup, a.solution_modules,
                                integrity.locked_imports(source(key)), skeletons)


def fill(template: str, key: str, name: str) -> str:
    topic, track = key.split("-")
    mod = f"gencourse.{topic}.{track}_models"
    return template.format(mod=mod, pkg=f"gencourse.{topic}", leaf=f"{track}_models", name=name,
                           topic=topic, track=track, alias="km" if track == "tf" else "tm")


@pytest.mark.parametrize("key", KEYS)
def test_the_surface_is_what_locked_cells_import_and_holds_no_solution(key):
    a = get_assignment(key)
    surface = integrity.locked_imports(source(key))
    assert f"gencourse.{key.split('-')[0]}" in surface and a.solution_modules
    assert not surface & set(a.solution_modules), surface
    assert read(key, {}) == []          # the solution itself: no route, no copy


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("route", [*ROUTES, *CLASS_ROUTES])
def test_each_route_zeroes_only_its_part(key, route):
    for gid, name, is_class in PLANTED[key]:
        template = ROUTES.get(route) or CLASS_ROUTES.get(route)
        if route in CLASS_ROUTES and not is_class:
            continue
        findings = [f for f in read(key, {gid: fill(template, key, name)}) if not f.copy]
        assert findings, (key, gid, route)
        assert {f.part for f in findings} == {gid}
        message = findings[0].message()
        assert message.startswith(f"the cell {gid!r}") and message.endswith("write your own (0 points for this part)")
        assert f"`{name}`" in message or route == "exec of the source", message


def test_routes_name_the_package_implementation():
    f = read("vae-torch", {"kl": fill(ROUTES["alias"], "vae-torch", "kl_divergence")})
    assert any("`gencourse.vae.torch_models.kl_divergence`" in x.route for x in f)
    f = read("vae-torch", {"kl": fill(ROUTES["through a trainer's module"], "vae-torch", "kl_divergence")})
    assert any("`gencourse.vae.torch_models.kl_divergence`" in x.route for x in f), f
    f = read("stylegan-torch", {"frechet": "from gencourse.metrics import frechet_distance\n"})
    assert [x.route for x in f] == ["imports `gencourse.metrics.frechet.frechet_distance`, the package's solution"]
    f = read("vae-tf", {"latent_ranges": "from gencourse.reference.vae import latent_ranges\n"})
    assert f and f[0].part == "latent_ranges"


def test_honest_code_that_looks_like_reflection_is_not_flagged():
    honest = ("import torch\nfrom torch import nn\n\nclass Encoder(nn.Module):\n"
              "    def __init__(self, latent_dim=2, n_classes=0):\n        super().__init__()\n"
              "        self.n_classes = n_classes\n        self.layers = nn.ModuleList([nn.Linear(784, latent_dim)])\n"
              "    def forward(self, x, y=None):\n        n = sum(1 for _ in self.modules())\n"
              "        return getattr(self, 'layers')[0](x.flatten(1)) * n\n")
    assert read("vae-torch", {"encoder": honest}) == []


def _package_source(module: str, name: str) -> str:
    text = module_file(module).read_text()
    node = next(n for n in ast.parse(text).body if getattr(n, "name", None) == name)
    return "\n".join(text.splitlines()[node.lineno - 1:node.end_lineno]) + "\n"


def test_a_retyped_copy_of_eight_lines_is_flagged_not_zeroed():
    copy = _package_source("gencourse.vae.torch_models", "Encoder").replace("h = ", "hidden = ").replace(
        "(h", "(hidden").replace('"""x [B', '"""my own, x [B')
    findings = read("vae-torch", {"encoder": copy})
    assert [f.copy for f in findings] == [True], findings
    assert findings[0].route.startswith("matches gencourse/vae/torch_models.py:")
    assert "points kept" in findings[0].message()
    short = _package_source("gencourse.vae.torch_models", "kl_divergence")      # short answers coincide
    assert read("vae-torch", {"kl": short}) == []


# --------------------------------------------------------------------------- run time, real gradings

VAE_TORCH_PLANTS = {   # each route reaches the package only while the cells or probes run
    "kl": ("def kl_divergence(z_mean, z_log_var):\n    name = '.'.join(['gen' + 'course', 'vae', 'torch' + '_mo'"
           " + 'dels'])\n    return __import__(name, fromlist=['x']).kl_divergence(z_mean, z_log_var)\n"),
    "condition": ("import gencourse.vae.torch_track as t\n"
                  "def condition(h, labels, n_classes=10):\n    return t.tm.condition(h, labels, n_classes)\n"),
    "encoder": ("from torch import nn\nfrom gencourse.vae.common import VAEConfig\n"
                "from gencourse.vae.torch_track import TorchVAE\n\nclass Encoder(nn.Module):\n"
                "    def __init__(self, latent_dim=2, n_classes=0):\n        super().__init__()\n"
                "        config = VAEConfig(latent_dim=latent_dim, conditional=bool(n_classes))\n"
                "        self.inner = TorchVAE(config, 'cpu').model.encoder\n"
                "    def forward(self, x, y=None):\n        return self.inner(x, y)\n"),
    "reconstruction": ("import gencourse as g\nsrc = open(g.__path__[0] + '/vae/torch_models.py').read()\n"
                       "src = src[src.index('def reconstruction_loss'):src.index('class Sampling')]\n"
                       "EPS = 1e-7\nexec(compile(src, 'x', 'exec'))\n"),
}


def _planted_notebook(key: str, plants: dict, path: Path) -> Path:
    nb = nbformat.read(source(key), as_version=4)
    by_id = grade_ids(nb)
    for gid, text in plants.items():
        by_id[gid].source = text
    nbformat.write(nb, path)
    return path


VAE_TF_PLANTS = {
    "kl": ("def kl_divergence(z_mean, z_log_var):\n    import gencourse.vae.tf_models as mine\n"
           "    return mine.kl_divergence(z_mean, z_log_var)\n"),
    "sampling": "import gencourse.vae.tf_track as t\n\nclass Sampling(t.km.Sampling):\n    pass\n",
    "encoder": ("from gencourse.vae.common import VAEConfig\nfrom gencourse.vae.tf_track import TFVAE\n\n"
                "def build_encoder(latent_dim=2, n_classes=0):\n"
                "    return TFVAE(VAEConfig(latent_dim=latent_dim, conditional=bool(n_classes))).encoder\n"),
}
CYCLEGAN_TORCH_PLANTS = {
    "identity_loss": ("import gencourse.cyclegan.torch_track as t\n\ndef identity_loss(*args, **kwargs):\n"
                      "    return t.tm.identity_loss(*args, **kwargs)\n"),
    "discriminator": ("from torch import nn\nimport gencourse.cyclegan as c\n\nclass PatchDiscriminator(nn.Module):\n"
                      "    def __init__(self, *args, **kwargs):\n        super().__init__()\n"
                      "        self.inner = c.torch_models.PatchDiscriminator(*args, **kwargs)\n"
                      "    def forward(self, x):\n        return self.inner(x)\n"),
}
RUN_TIME = {   # key: (plants, what the routes must say)
    "vae-torch": (VAE_TORCH_PLANTS, ["imports `gencourse.vae.torch_models`", "reaches `gencourse.vae.torch_models` "
                                     "through", "builds `gencourse.vae.torch_models.Encoder`",
                                     "compiled from text outside your cells"]),
    "vae-tf": (VAE_TF_PLANTS, ["imports `gencourse.vae.tf_models`", "builds `gencourse.vae.tf_models.Sampling`",
                               "a class built on `gencourse.vae.tf_models.Sampling`"]),
    "cyclegan-torch": (CYCLEGAN_TORCH_PLANTS, ["reaches `gencourse.cyclegan.torch_models` through",
                                               "builds `gencourse.cyclegan.torch_models.PatchDiscriminator`"]),
}


@pytest.mark.parametrize("key", RUN_TIME)
def test_run_time_evidence_alone_zeroes_each_planted_part(key, tmp_path, monkeypatch):
    monkeypatch.setattr(integrity, "read_parts", lambda *args, **kwargs: [])   # the worker's evidence only
    plants, says = RUN_TIME[key]
    path = _planted_notebook(key, plants, tmp_path / "student.ipynb")
    report = grade_notebook(path, fast_key(key), student="student")
    zeroed = {e["part"] for e in report.integrity if e["action"] == "zeroed"}
    assert zeroed == set(plants), report.integrity
    for r in report.results:
        if r.part in plants:
            assert r.score == 0 and "the package's solution: write your own" in r.message, (r.name, r.message)
        else:
            assert r.score == r.points, (r.name, r.message)
    routes = " | ".join(e["message"] for e in report.integrity)
    for seen in says:
        assert seen in routes, routes
    assert not grader_errors(report), report.notes
    if key != "vae-torch":
        return
    write_outputs(report, tmp_path / "out", csv_path=tmp_path / "out" / "grades.csv")
    row = next(csv.DictReader(open(tmp_path / "out" / "grades.csv")))
    assert row["integrity"] == "zeroed: " + ", ".join(sorted(zeroed))
    assert "Integrity (is each part your own work?)" in feedback_text(report)


STYLEGAN_TORCH_PLANTS = {
    "equalized": "import gencourse.stylegan as s\n\nclass EqualizedLinear(s.torch_models.EqualizedLinear):\n    pass\n",
    "mixing": "import gencourse.stylegan.torch_track as t\nmix_styles = getattr(t, 'tm').mix_styles\n",
    "adain": ("from torch import nn\nfrom gencourse.stylegan import pretrained\n\n"
              "class AdaptiveInstanceNorm(nn.Module):\n    def __init__(self, channels, w_dim, eps=1e-8):\n"
              "        super().__init__()\n        shipped = pretrained.load('torch').generator_ema\n"
              "        self.inner = next(m for m in shipped.modules() if type(m).__name__ == 'AdaptiveInstanceNorm')\n"
              "        self.style = self.inner.style\n    def forward(self, x, w):\n        return self.inner(x, w)\n"),
}


def test_gencourse_check_says_the_same_with_both_layers_on_stylegan(tmp_path):
    """`gencourse check` (visible checks only): the static reading and the run-time evidence together."""
    plants = {**STYLEGAN_TORCH_PLANTS, "truncation": "from gencourse.stylegan.torch_models import truncate\n"}
    path = _planted_notebook("stylegan-torch", plants, tmp_path / "student.ipynb")
    report = grade_notebook(path, fast_key("stylegan-torch"), student="student", visible_only=True)
    zeroed = {e["part"] for e in report.integrity if e["action"] == "zeroed"}
    assert zeroed == set(plants), report.integrity
    seen = {e["part"] for e in report.integrity if "(seen while your code ran)" in e["message"]}
    assert seen == set(plants), report.integrity      # the import fails in the worker too, and says why
    for r in report.results:
        assert (r.score == 0) if r.part in plants else (r.score == r.points), (r.name, r.message)
    message = next(r.message for r in report.results if r.part == "truncation")
    assert message.startswith("the cell 'truncation' (`truncate`) imports "
                              "`gencourse.stylegan.torch_models.truncate`, the package's solution: write your own")
    assert not grader_errors(report), report.notes


def test_the_solution_graded_with_the_guard_keeps_every_point_unflagged(tmp_path):
    report = grade_notebook(source("vae-torch"), fast_key("vae-torch"), student="solution")
    assert report.integrity == [] and report.score == report.max_score, report.integrity
