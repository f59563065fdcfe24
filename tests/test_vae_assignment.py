"""The VAE assignment in both tracks: source notebooks, checks, planted mistakes, notebook runs.

The solutions must earn every point through the isolated grader, an untouched
release none (with "not implemented yet" and no grader error). Each common
mistake, planted in a copy of the solution as a small edit of its solution code,
must lose exactly the checks that judge it, with a message naming it; correct
answers in another style keep every point. Each part is probed with the trusted
versions of the others, so the mistakes of one track go into a few notebooks,
one per part at most, graded without the slow training checks; those are graded
on the mistakes they exist to catch.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from gencourse.grading import Mistake, Reply
from gencourse.grading.grade import grade_notebook
from gencourse.vae.assignment import PARTS
from gencourse.vae.assignment import checks as vc

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, RELEASE = ROOT / "solutions", ROOT / "assignments"
TRACKS = ("tf", "torch")
ANSWERS = ("reparam_answer", "kl_answer", "curves_answer", "ranges_answer", "latent_answer")
QUICK_ENV = {"GENCOURSE_EPOCHS": "1", "GENCOURSE_TRAIN_SIZE": "500", **{k: "1" for k in (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}}
POINTS = 60


def source(track: str) -> Path:
    return SOLUTIONS / "vae" / f"vae_{track}.ipynb"


def grade_ids(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def by_name(report) -> dict:
    return {r.name: r for r in report.results}


import assignment_helpers as helpers  # noqa: E402  (it takes grade_ids from this module)


def regions(track: str, cell: str) -> list[str]:
    """The solution regions of a cell of the solution notebook, without their markers and indentation."""
    src = grade_ids(nbformat.read(source(track), as_version=4))[cell].source
    found = re.findall(r"^( *)### BEGIN SOLUTION\n(.*?)^ *### END SOLUTION", src, flags=re.M | re.S)
    return [re.sub(rf"^{indent}", "", body, flags=re.M) for indent, body in found]


def edit(track: str, cell: str, *changes, index: int = 0) -> dict:
    """{cell: {index: body}}: the solution's region with each (old, new) replaced (old must occur)."""
    body = regions(track, cell)[index]
    for old, new in changes:
        assert old in body, (track, cell, old)
        body = body.replace(old, new)
    return {cell: {index: body}}


def planted(track, tmp_path, name, *edits) -> Path:
    mistakes: dict = {}
    for e in edits:
        for cell, bodies in e.items():
            mistakes.setdefault(cell, {}).update(bodies)
    return helpers.plant(source(track), tmp_path / f"{name}.ipynb", mistakes)


def checks_named(part: str, *words, visible=None) -> list[str]:
    """Names of the checks of `part` (both tracks have the same) whose name holds every word."""
    out = []
    for check in helpers.collect_checks(helpers.get_assignment("vae-torch"))[0]:
        if check.part == part and all(w in check.name for w in words) and visible in (None, check.visible):
            out.append(check.name)
    assert out, (part, words)
    return out


S_STATS = checks_named("sampling", "z = z_mean") + checks_named("sampling", "log-variances per entry")
S_GRAD = checks_named("sampling", "radients")
ENC_SHAPES, ENC_NET = checks_named("encoder", "parameters"), checks_named("encoder", "trusted weights")
DEC_SHAPES, DEC_NET = checks_named("decoder", "parameters"), checks_named("decoder", "trusted weights")
REC_VALUES, REC_SAT, REC_GRAD = (checks_named("reconstruction", "cross-entropy") + checks_named("reconstruction", "hidden"),
                                 checks_named("reconstruction", "finite"), checks_named("reconstruction", "gradient"))
KL_VALUES, KL_GRAD = checks_named("kl", "(hidden)") + checks_named("kl", "closed form"), checks_named("kl", "gradients")
STEP = checks_named("train_step", "")
IWAE_VALUES = checks_named("iwae", "one value per example") + checks_named("iwae", "hidden")
RANGES = {k: checks_named("latent_ranges", w) for k, w in
          (("minmax", "(min, max)"), ("pct", "percentiles"), ("nan", "NaN"), ("hidden", "hidden"))}
GRID = checks_named("manifold", "grid of codes") + checks_named("manifold", "Manifold grid")
IMAGE = checks_named("manifold", "image")
COND = checks_named("condition", "")
VAE_TRAINING, CVAE_TRAINING = checks_named("training", "a VAE with"), checks_named("training", "a CVAE with")


def hints(names, hint) -> dict:
    return dict.fromkeys(names, hint)


# ----------------------------------------------------------------------------- fast: structure and judges

@pytest.mark.parametrize("track", TRACKS)
def test_source_notebook_markup(track):
    cells = helpers.check_markup(source(track), f"vae-{track}", PARTS, ANSWERS, "training")
    lines = sum(len(body.strip().splitlines()) for part in PARTS for body in regions(track, part))
    assert lines >= 60, lines          # the floor for the solution's TODO regions per track
    assert "closed form" not in cells["kl"].source and "-0.5" not in "".join(
        c.source for c in nbformat.read(RELEASE / "vae" / f"vae_{track}.ipynb", as_version=4).cells)


@pytest.mark.parametrize("track", TRACKS)
def test_hidden_checks_use_other_inputs(track):
    helpers.check_hidden_inputs(f"vae-{track}", PARTS, "vae.py")


def test_judges_name_the_stub_and_other_errors():
    from gencourse.grading import failure

    assert failure(Reply(error="NotImplementedError (cell 'kl', line 4)")).startswith("not implemented yet")
    framework = Reply(error="NotImplementedError: Cannot convert a symbolic tf.Tensor to a numpy array (cell 'x', line 3)")
    assert "raised an error" in failure(framework)


def _kl_verdict(case, value):
    reply = {"k": Reply(arrays={"value": np.asarray(value), "again": np.asarray(value)})}
    try:
        vc.judge_kl(case.inputs, reply, "k")
    except Mistake as e:
        return str(e)
    return "correct"


def test_kl_hints_name_a_cause_only_where_the_inputs_tell_causes_apart():
    """A KL averaged over 2 latent dimensions is also half the KL: named only where the width differs."""
    from gencourse.reference import gaussian_kl

    for dims, halved, averaged in ((2, "give the same", "give the same"), (5, "1/2, once", "mean over the 5")):
        case = vc.kl_case(3, 10, dims)
        mu, lv = case.inputs["z_mean"].astype(np.float64), case.inputs["z_log_var"].astype(np.float64)
        kl = gaussian_kl(mu, lv, reduce="none")
        assert _kl_verdict(case, kl) == "correct"
        assert halved in _kl_verdict(case, kl / 2)
        assert averaged in _kl_verdict(case, kl / dims)
        assert "the 1 inside" in _kl_verdict(case, kl + dims / 2)
        assert "log standard deviation" in _kl_verdict(case, -0.5 * np.sum(1 + 2 * lv - mu**2 - np.exp(2 * lv), -1))
        assert "+ 0.3" in _kl_verdict(case, kl + 0.3)            # an offset no known mistake makes: described


def test_iwae_judges_name_each_known_mistake_and_pass_the_oracle():
    """On each visible and hidden case every known wrong bound is told apart from the others and from the
    right one (so its hint is the one given); a log-mean-exp without the max passes the values and fails
    only the finiteness check, at a digit's likelihood."""
    from gencourse import reference
    from gencourse.reference.vae import log_normal
    from gencourse.vae.assignment.iwae_checks import iwae_variants

    def verdict(judge, case, value):
        try:
            judge(case.inputs, {"k": Reply(arrays={"value": np.asarray(value), "again": np.asarray(value)})}, "k")
        except Mistake as e:
            return str(e)
        return "correct"

    cases = [vc.iwae_case(201, 50, 6, 2), vc.iwae_case(202, 7, 9, 3, log_px=(-12.0, -1.0)),
             vc.iwae_case(212, 30, 4, 1, log_px=(-40.0, -2.0))]
    for case in cases:
        args = [case.inputs[k].astype(np.float64) for k in ("log_px_given_z", "z", "z_mean", "z_log_var")]
        assert verdict(vc.judge_iwae, case, reference.iwae_bound(*args).astype(np.float32)) == "correct"
        for value, hint in iwae_variants(*args):
            assert verdict(vc.judge_iwae, case, value.astype(np.float32)) == hint
    deep = vc.iwae_case(203, 50, 5, 2, log_px=(-700.0, -150.0))
    lp, z, mu, lv = (deep.inputs[k].astype(np.float64) for k in ("log_px_given_z", "z", "z_mean", "z_log_var"))
    log_w = (lp + log_normal(z) - log_normal(z, mu[None], lv[None])).astype(np.float32)
    with np.errstate(divide="ignore"):
        naive = np.log(np.mean(np.exp(log_w), axis=0))          # exp(-400) is 0 in float32
    assert "log-sum-exp" in verdict(vc.judge_iwae_finite, deep, naive)
    assert verdict(vc.judge_iwae_finite, deep, reference.iwae_bound(lp, z, mu, lv)) == "correct"


def test_step_judge_weighs_the_kl_by_beta_and_names_a_step_that_ignores_it():
    """With beta = 4 the update must be the reconstruction's gradient plus 4 times the KL's; beta's default
    (1) taken instead is named, and so is a step that also sums over the batch; beta = 1 is as before."""
    from gencourse.vae.assignment.step_checks import judge_update

    rng = np.random.default_rng(5)
    w0, g_r, g_k = rng.normal(size=(3, 40))
    lr, n_enc, batch = 0.01, 25, 16

    def verdict(update, beta):
        try:
            judge_update(w0, w0 - lr * update, lr, g_r, g_k, n_enc, batch, beta=beta)
        except Mistake as e:
            return str(e)
        return "correct"

    assert verdict(g_r + 4 * g_k, 4.0) == "correct"
    assert verdict(g_r + g_k, 1.0) == "correct"
    assert "ignores its beta argument" in verdict(g_r + g_k, 4.0)
    assert "the KL term does not reach" in verdict(g_r, 4.0)
    assert "summed over the batch" in verdict(batch * (g_r + 4 * g_k), 4.0)
    assert "expected 1 and 4" in verdict(g_r + 2 * g_k, 4.0)
    assert "expected 1 and 1" in verdict(g_r + 4 * g_k, 1.0)


def test_the_grids_and_the_manifold_image_follow_the_report():
    from gencourse.reference.vae import latent_grid, manifold_image

    grid = latent_grid(3, (0, 0), (2, 4))
    assert grid.tolist() == [[0, 4], [1, 4], [2, 4], [0, 2], [1, 2], [2, 2], [0, 0], [1, 0], [2, 0]]
    normal = latent_grid(3, method="normal")
    assert np.allclose(normal[:3, 0], [-1.6449, 0, 1.6449], atol=1e-4) and np.allclose(normal[::3, 1], [1.6449, 0, -1.6449], atol=1e-4)
    tiles = np.arange(4)[:, None, None] * np.ones((4, 28, 28))
    image = manifold_image(tiles, 2)
    assert image[0, 0] == 0 and image[0, 28] == 1 and image[28, 0] == 2 and image[28, 28] == 3


# ----------------------------------------------------------------------------- graded through the isolated grader

@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_gets_full_marks(track):
    start = time.time()
    report = grade_notebook(source(track), f"vae-{track}", student="solution")
    helpers.assert_full_marks(report, POINTS, {*PARTS, "training"})
    print(f"grading the {track} solution: {time.time() - start:.0f} s;",
          "; ".join(r.message for r in report.results if r.part == "training"))


@pytest.mark.parametrize("track", TRACKS)
def test_untouched_release_scores_zero(track):
    report = grade_notebook(RELEASE / "vae" / f"vae_{track}.ipynb", helpers.fast_key(f"vae-{track}"), student="untouched")
    helpers.assert_untouched(report, POINTS - 5)


def mistakes(track: str) -> dict:
    """{notebook: (edits, {check name: hint})}: at least three common mistakes per TODO, one part per notebook
    at most, in each track."""
    tf = track == "tf"
    enc_relu = (('padding="same", activation="relu")(h)\n', 'padding="same")(h)\n') if tf else
                ("h = F.relu(self.conv2(h))", "h = self.conv2(h)"))
    return {
        "a": ([edit(track, "sampling", ("ops.exp(0.5 * z_log_var)", "ops.exp(z_log_var)") if tf else
                    ("torch.exp(0.5 * z_log_var)", "torch.exp(z_log_var)")),
               edit(track, "encoder", enc_relu, index=0 if tf else 1),
               edit(track, "decoder", ('activation="sigmoid"', 'activation=None') if tf else
                    ("return torch.sigmoid(self.deconv3(h))", "return self.deconv3(h)"), index=0 if tf else 1),
               edit(track, "reconstruction", ("ops.clip(x_prob, 1e-7, 1.0 - 1e-7)", "x_prob") if tf else
                    ("x_prob.clamp(1e-7, 1 - 1e-7)", "x_prob")),
               edit(track, "kl", ("-0.5 *", "-1.0 *")),
               edit(track, "train_step", ("loss = ops.mean(recon + self.beta * kl)", "loss = ops.mean(recon)")
                    if tf else
                    ("loss = recon + beta * kl", "loss = recon")),
               edit(track, "iwae", ("ops.logsumexp(log_w, axis=0) - ops.log(k)", "ops.mean(log_w, axis=0)") if tf else
                    ("torch.logsumexp(log_w, dim=0) - float(np.log(log_w.shape[0]))", "log_w.mean(dim=0)")),
               edit(track, "latent_ranges", ("np.full((n_classes, z.shape[1], 2), np.nan)",
                                             "np.zeros((n_classes, z.shape[1], 2))")),
               edit(track, "manifold", ("ys = np.linspace(high[1], low[1], n)", "ys = np.linspace(low[1], high[1], n)")),
               edit(track, "condition", ("ops.concatenate([h, onehot], axis=-1)", "ops.concatenate([onehot, h], axis=-1)")
                    if tf else ("torch.cat([h, F.one_hot(labels, n_classes).to(h.dtype)], dim=-1)",
                                "torch.cat([F.one_hot(labels, n_classes).to(h.dtype), h], dim=-1)"))],
              {**hints(S_STATS, "exp(z_log_var) = sigma^2"), **hints(S_GRAD, "exp(z_log_var) where"),
               **hints(ENC_NET, "keeps negative values"),
               **hints(DEC_SHAPES, "needs a sigmoid"), **hints(DEC_NET, "applies a sigmoid there and yours does not"),
               **hints(REC_SAT, "clip"), **hints(KL_VALUES, "twice the expected values"),
               **hints(KL_GRAD, "2 times"),
               **hints(STEP, "the KL term does not reach the loss"),
               **hints(IWAE_VALUES, "the mean of the log-weights"),
               **hints(RANGES["nan"] + RANGES["hidden"], "must be NaN"),
               **hints(GRID, "the rows go from low to high"), **hints(COND, "comes first")}),
        "b": ([edit(track, "encoder", ('strides=2, padding="same", activation="relu")(image)',
                                       'strides=1, padding="same", activation="relu")(image)') if tf else
                    ("nn.Conv2d(1, 32, 3, stride=2, padding=1)", "nn.Conv2d(1, 32, 4, stride=2, padding=1)")),
               edit(track, "decoder", ('layers.Dense(7 * 7 * 64, activation="relu")(h)', 'layers.Dense(7 * 7 * 64)(h)')
                    if tf else ("h = F.relu(self.dense(h))", "h = self.dense(h)"),
                    index=0 if tf else 1),
               edit(track, "reconstruction", ("axis=1)", "axis=1) / 784") if tf else (".sum(dim=1)", ".mean(dim=1)")),
               edit(track, "kl", ("axis=-1)", "axis=-1) / ops.cast(ops.shape(z_mean)[-1], 'float32')") if tf else
                    ("dim=-1)", "dim=-1) / z_mean.shape[-1]")),
               edit(track, "train_step", ("ops.mean(recon + self.beta * kl)", "ops.sum(recon + self.beta * kl)")
                    if tf else
                    ("optimizer.zero_grad()\n", "")),
               edit(track, "iwae", (" - ops.log(k)", "") if tf else (" - float(np.log(log_w.shape[0]))", "")),
               edit(track, "latent_ranges", ("np.percentile(codes, percentile, axis=0)",
                                             "np.percentile(codes, percentile / 100, axis=0)"),
                    ("np.percentile(codes, 100 - percentile, axis=0)", "np.percentile(codes, 100 - percentile / 100, axis=0)")),
               edit(track, "sampling", ("keras.random.normal(", "keras.random.uniform(") if tf else
                    ("torch.randn_like(", "torch.rand_like(")),
               edit(track, "manifold", ("images.transpose(0, 2, 1, 3).reshape", "images.reshape"), index=1),
               edit(track, "condition", ("ops.cast(ops.one_hot(labels, n_classes), h.dtype)",
                                         "ops.cast(ops.one_hot(labels, n_classes), 'float64')") if tf else
                    (".to(h.dtype)", ".double()"))],
              {**hints(ENC_SHAPES, "parameters, the report's 69,076"), **hints(ENC_NET, "weights do not fit"),
               **hints(DEC_NET, "keeps negative values"),
               **hints(REC_VALUES, "the mean over the 784 pixels"), **hints(REC_GRAD, "times the expected one"),
               **hints(KL_VALUES, "mean over the"), **hints(KL_GRAD, "times the expected one"),
               **hints(STEP, "summed over the batch" if tf else "the gradients accumulate"),
               **hints(IWAE_VALUES, "log K"),
               **hints(RANGES["pct"] + RANGES["hidden"], "read as a fraction"), **hints(S_STATS, "uniform"),
               **hints(IMAGE, "cuts them into strips"), **hints(COND, "64-bit floats for 32-bit features")}),
        "c": ([edit(track, "encoder", ('z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)',
                                       'z_log_var = layers.Dense(latent_dim, activation="relu", name="z_log_var")(h)')
                    if tf else ("self.z_log_var(h)", "F.relu(self.z_log_var(h))"), index=0 if tf else 1),
               edit(track, "decoder", ("layers.Conv2DTranspose(32, 3, strides=2", "layers.Conv2DTranspose(32, 5, strides=2")
                    if tf else ("nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1,",
                                "nn.ConvTranspose2d(64, 32, 5, stride=2, padding=2,")),
               edit(track, "sampling", ("eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)\n"
                                        "return z_mean + ops.exp(0.5 * z_log_var) * eps",
                                        "eps = np.random.normal(size=tuple(z_mean.shape))\n"
                                        "return np.asarray(z_mean) + np.exp(0.5 * np.asarray(z_log_var)) * eps") if tf else
                    ("eps = torch.randn_like(z_mean, generator=self.generator)\n"
                     "return z_mean + torch.exp(0.5 * z_log_var) * eps",
                     "eps = np.random.normal(size=tuple(z_mean.shape))\n"
                     "z = z_mean.detach().numpy() + np.exp(0.5 * z_log_var.detach().numpy()) * eps\n"
                     "return torch.as_tensor(z, dtype=torch.float32)")),
               edit(track, "reconstruction", *_logits(track)),
               edit(track, "kl", ("1.0 + z_log_var", "z_log_var") if tf else ("1 + z_log_var", "z_log_var")),
               edit(track, "latent_ranges", ("ranges[c, :, 0] = np.percentile(codes, percentile, axis=0)\n"
                                             "        ranges[c, :, 1] = np.percentile(codes, 100 - percentile, axis=0)",
                                             "ranges[c, :, 0] = codes.min(axis=0)\n"
                                             "        ranges[c, :, 1] = codes.max(axis=0)")),
               edit(track, "manifold", ("xs = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])",
                                        "xs = np.linspace(0.05, 0.95, n)")),
               edit(track, "condition", ("ops.one_hot(labels, n_classes)", "ops.one_hot(labels, 10)") if tf else
                    ("F.one_hot(labels, n_classes)", "F.one_hot(labels, 10)")),
               edit(track, "iwae", ("log_w = log_px_given_z + log_prior - log_post",
                                    "log_w = log_px_given_z - log_post")),
               edit(track, "train_step", ("return {m.name: m.result() for m in self.metrics}",
                                          "return {'loss': ops.mean(recon + kl), 'recon': ops.mean(recon), "
                                          "'kl': ops.mean(kl)}") if tf else
                    ('"recon": recon.detach(), "kl": kl.detach()', '"recon": kl.detach(), "kl": recon.detach()'))],
              {**hints(ENC_NET, "a ReLU where the reference has another activation"),
               **hints(S_GRAD, "outside the framework's graph"),
               **hints(REC_VALUES, "read as logits"), **hints(REC_GRAD, "should be (1 - x) / (1 - p) - x / p"),
               **hints(DEC_SHAPES, "parameters, the report's 65,089"), **hints(DEC_NET, "weights do not fit"),
               **hints(KL_VALUES, "the 1 inside"),
               **hints(STEP, "not the trackers' running means" if tf else "swapped"),
               **hints(IWAE_VALUES, "the prior's log-density"),
               **hints(RANGES["pct"] + RANGES["hidden"], "gave the min and max"),
               **hints(GRID, "the probabilities themselves"),
               **hints(COND[1:], "n_classes is 4")}),
    }


def _logits(track):
    """The reconstruction computed as if x_prob were logits."""
    if track == "tf":
        return (("p = ops.clip(x_prob, 1e-7, 1.0 - 1e-7)\n", ""),
                ("bce = -(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p))\n", ""),
                ("return ops.sum(ops.reshape(bce, (ops.shape(bce)[0], -1)), axis=1)",
                 "return ops.sum(keras.losses.binary_crossentropy(x, x_prob, from_logits=True), axis=(1, 2))"))
    return (("p = x_prob.clamp(1e-7, 1 - 1e-7)\n", ""), ("bce = -(x * p.log() + (1 - x) * torch.log1p(-p))\n", ""),
            ("return bce.flatten(1).sum(dim=1)",
             "return F.binary_cross_entropy_with_logits(x_prob, x, reduction='none').sum(dim=(1, 2, 3))"))


@pytest.mark.parametrize("notebook", ["a", "b", "c"])
@pytest.mark.parametrize("track", TRACKS)
def test_planted_mistakes_lose_exactly_their_checks(track, notebook, tmp_path):
    edits, expected = mistakes(track)[notebook]
    report = grade_notebook(planted(track, tmp_path, notebook, *edits), helpers.fast_key(f"vae-{track}"),
                            student=notebook)
    helpers.assert_lost_exactly(report, expected)


def other_styles(track: str) -> list[dict]:
    """Correct answers written another way: other APIs, another decomposition, another declaration order."""
    if track == "tf":
        return [
            edit(track, "encoder", ('layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)',
                                    'layers.ReLU()(layers.Conv2D(64, 3, strides=2, padding="same")(h))'),
                 ("layers.Flatten()(h)", "layers.Reshape((7 * 7 * 64,))(h)"),
                 ('z_mean = layers.Dense(latent_dim, name="z_mean")(h)\n'     # the two heads as one layer, split
                  'z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)',
                  "heads = layers.Dense(2 * latent_dim)(h)\n"
                  "z_mean, z_log_var = heads[:, :latent_dim], heads[:, latent_dim:]")),
            edit(track, "reconstruction", ("p = ops.clip(x_prob, 1e-7, 1.0 - 1e-7)\n", ""),
                 ("bce = -(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p))\n", ""),
                 ("return ops.sum(ops.reshape(bce, (ops.shape(bce)[0], -1)), axis=1)",
                  "return ops.sum(keras.losses.binary_crossentropy(x, x_prob), axis=(1, 2))")),
            edit(track, "kl", ("return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)",
                               "return 0.5 * ops.sum(z_mean**2 + ops.exp(z_log_var) - 1.0 - z_log_var, axis=1)")),
            edit(track, "train_step", ("grads = tape.gradient(loss, self.trainable_weights)\n"
                                       "self.optimizer.apply_gradients(zip(grads, self.trainable_weights))",
                                       "weights = self.encoder.trainable_weights + self.decoder.trainable_weights\n"
                                       "self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))")),
            edit(track, "iwae", ("log_w = log_px_given_z + log_prior - log_post\n", ""),   # no 2 pi: it cancels
                 ("log_prior = -0.5 * ops.sum(log_2pi + ops.square(z), axis=-1)",
                  "log_prior = -0.5 * ops.sum(ops.square(z), axis=-1)"),
                 ("log_post = -0.5 * ops.sum(log_2pi + z_log_var", "log_post = -0.5 * ops.sum(z_log_var"),
                 ("k = ops.cast(ops.shape(log_w)[0], log_w.dtype)\n", "log_w = log_px_given_z + log_prior - log_post\n"
                                                                     "top = ops.max(log_w, axis=0)\n"),
                 ("return ops.logsumexp(log_w, axis=0) - ops.log(k)",
                  "return top + ops.log(ops.mean(ops.exp(log_w - top), axis=0))")),
            edit(track, "condition", ("onehot = ops.cast(ops.one_hot(labels, n_classes), h.dtype)",
                                      "onehot = ops.one_hot(labels, n_classes, dtype=h.dtype)")),
            *_neutral_styles(track)]
    return [
        edit(track, "encoder", ("h = F.relu(self.conv1(x))\nh = F.relu(self.conv2(h))\nh = h.flatten(1)",
                                "h = nn.Flatten()(torch.relu(self.conv2(nn.ReLU()(self.conv1(x)))))"),
             ("z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)",          # the two heads as one layer
              "z_mean, z_log_var = self.heads(h).chunk(2, dim=-1)"), index=1),
        edit(track, "encoder", ("self.z_mean = nn.Linear(16, latent_dim)\nself.z_log_var = nn.Linear(16, latent_dim)",
                                "self.heads = nn.Linear(16, 2 * latent_dim)")),
        edit(track, "decoder", ("self.dense = nn.Linear(latent_dim + n_classes, 7 * 7 * 64)\n", ""),
             ("self.deconv3 = nn.ConvTranspose2d(32, 1, 3, padding=1)",
              "self.deconv3 = nn.ConvTranspose2d(32, 1, 3, padding=1)\n"
              "self.dense = nn.Linear(latent_dim + n_classes, 7 * 7 * 64)")),
        edit(track, "reconstruction", ("p = x_prob.clamp(1e-7, 1 - 1e-7)\n", ""),
             ("bce = -(x * p.log() + (1 - x) * torch.log1p(-p))\n", ""),
             ("return bce.flatten(1).sum(dim=1)",
              "return F.binary_cross_entropy(x_prob, x, reduction='none').sum(dim=(1, 2, 3))")),
        edit(track, "kl", ("return -0.5 * torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp(), dim=-1)",
                           "q = torch.distributions.Normal(z_mean, torch.exp(0.5 * z_log_var))\n"
                           "p = torch.distributions.Normal(torch.zeros_like(z_mean), torch.ones_like(z_mean))\n"
                           "return torch.distributions.kl_divergence(q, p).sum(-1)")),
        edit(track, "train_step", ("recon = reconstruction_loss(x, x_prob).mean()",
                                   "recon = reconstruction_loss(x, x_prob).sum() / len(x)"),
             ("optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=True)")),
        edit(track, "condition", ("torch.cat([h, F.one_hot(labels, n_classes).to(h.dtype)], dim=-1)",
                                  "torch.hstack([h, torch.eye(n_classes, dtype=h.dtype)[labels]])")),
        edit(track, "iwae", ("log_w = log_px_given_z + log_prior - log_post",
                             "q = torch.distributions.Normal(z_mean, torch.exp(0.5 * z_log_var))\n"
                             "p = torch.distributions.Normal(0.0, 1.0)\n"
                             "log_w = log_px_given_z + p.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)")),
        *_neutral_styles(track)]


def _neutral_styles(track):
    return [
        edit(track, "latent_ranges", ("np.percentile(codes, percentile, axis=0)", "np.quantile(codes, percentile / 100, axis=0)")),
        edit(track, "manifold", ("return np.array([[x, y] for y in ys for x in xs])",
                                 "gx, gy = np.meshgrid(xs, ys)\nreturn np.stack([gx.ravel(), gy.ravel()], axis=1)")),
        edit(track, "manifold", ("images = np.asarray(decode(codes)).reshape(n, n, 28, 28)\n", ""),
             ("return images.transpose(0, 2, 1, 3).reshape(28 * n, 28 * n)",
              "images, out = np.asarray(decode(codes)), np.zeros((28 * n, 28 * n))\n"
              "for k, image in enumerate(images):\n"
              "    i, j = divmod(k, n)\n"
              "    out[28 * i:28 * i + 28, 28 * j:28 * j + 28] = image\n"
              "return out"), index=1)]


@pytest.mark.parametrize("track", TRACKS)
def test_correct_answers_in_another_style_keep_every_point(track, tmp_path):
    report = grade_notebook(planted(track, tmp_path, "styles", *other_styles(track)), f"vae-{track}", student="styles")
    helpers.assert_full_marks(report, POINTS, {*PARTS, "training"})


@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_training_checks_name_the_term_that_does_not_train(track, tmp_path):
    """A KL without gradient (values right) and a wrong conditioning: each training check says what is off."""
    tf = track == "tf"
    no_grad_kl = edit(track, "kl", ("return -0.5", "return ops.stop_gradient(-0.5") if tf else ("return -0.5", "return (-0.5"),
                      ("axis=-1)", "axis=-1))") if tf else ("dim=-1)", "dim=-1)).detach()"))
    first = edit(track, "condition", ("ops.concatenate([h, onehot], axis=-1)", "ops.concatenate([onehot, h], axis=-1)")
                 if tf else ("torch.cat([h, F.one_hot(labels, n_classes).to(h.dtype)], dim=-1)",
                             "torch.cat([F.one_hot(labels, n_classes).to(h.dtype), h], dim=-1)"))
    report = grade_notebook(planted(track, tmp_path, "terms", no_grad_kl, first), f"vae-{track}", student="terms",
                            visible_only=True)
    helpers.assert_lost_exactly(report, {**hints(KL_GRAD[:1], "outside the framework's graph"),
                                         **hints(COND[:1], "comes first"), **hints(VAE_TRAINING, "the KL term is off"),
                                         **hints(CVAE_TRAINING, "does not draw the digit")})
    no_grad_recon = edit(track, "reconstruction", ("return ops.sum(", "return ops.stop_gradient(ops.sum(") if tf else
                         ("return bce.flatten(1).sum(dim=1)", "return bce.flatten(1).sum(dim=1).detach()"),
                         *((("axis=1)", "axis=1))"),) if tf else ()))
    report = grade_notebook(planted(track, tmp_path, "recon", no_grad_recon), f"vae-{track}", student="recon",
                            visible_only=True)
    helpers.assert_lost_exactly(report, {**hints(REC_GRAD[:1], "no gradient reaches x_prob"),
                                         **hints(VAE_TRAINING, "the reconstruction term is off")})


# ----------------------------------------------------------------------------- the notebooks run

@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_notebook_runs_top_to_bottom(track, tmp_path):
    """Quick setting; the test cells (visible and hidden checks) must pass in the kernel too."""
    from nbclient import NotebookClient

    from conftest import SHARED_MNIST

    nb = nbformat.read(source(track), as_version=4)
    env = {**QUICK_ENV, "GENCOURSE_DATA": str(SHARED_MNIST)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start = time.time()
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    elapsed = time.time() - start
    print(f"vae_{track}.ipynb ran in {elapsed:.0f} s at the quick setting")
    assert elapsed < 300
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "VAE epoch   1" in outputs and "CVAE epoch   1" in outputs and "8-d code" in outputs
    assert "-L_50 (your iwae_bound, K = 50)" in outputs and "bits/dim" in outputs and "beta = 4 epoch" in outputs
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"loss_curves.png", "reconstructions.png", "latent_scatter.png", "manifolds.png", "inputs_vs_outputs.png",
            "cvae_scatter.png", "cvae_manifolds.png", "cvae_inputs_vs_outputs.png", "prior_samples.png",
            "beta_reconstructions.png", "beta_0.5_scatter.png", "beta_4_scatter.png"} <= figures


HOSTILE_KL = {
    "patches_numpy_and_torch": (
        "import numpy, torch\n"
        "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True\n"
        "numpy.isclose = lambda *a, **k: True\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
        "torch.allclose = lambda *a, **k: True\ntorch.testing.assert_close = lambda *a, **k: None\n"
        "torch.Tensor.__eq__ = lambda self, other: True\n"
        "return torch.zeros(z_mean.shape[0]) + 7.0"),
    "always_equal_object": (
        "class Same:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
        "    def __array__(self, *a, **k):\n        raise TypeError('no')\n"
        "return Same()"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_KL))
def test_hostile_kl_earns_nothing_and_costs_nothing_else(case, tmp_path):
    """A KL that patches numpy/torch or returns an always-equal object: the KL checks are judged in
    the grader's process on plain arrays, so they score 0; every other part keeps its points."""
    nb = helpers.plant(source("torch"), tmp_path / f"{case}.ipynb", {"kl": HOSTILE_KL[case]})
    report = grade_notebook(nb, helpers.fast_key("vae-torch"), student=case)
    lost = {r.name for r in report.results if r.score < r.points}
    assert lost == set(KL_VALUES + KL_GRAD), lost
    assert report.score == report.max_score - sum(r.points for r in report.results if r.name in lost)
    assert not helpers.grader_errors(report), report.notes
