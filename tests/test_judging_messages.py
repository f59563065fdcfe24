"""Messages that name something: the entries that differ and by how much, framework errors in the student's terms,
and known mistakes whose values identify them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gencourse.grading import Mistake, Reply, differences, failure
from gencourse.vae.assignment import checks as vc


def test_differences_show_the_entries_that_differ_not_the_first():
    expected = np.arange(20, dtype=np.float64)
    got = expected.copy()
    got[[13, 17]] += [0.5, -2.0]                  # the first 8 entries agree
    text = differences(got, expected)
    assert text.startswith("2 of 20 entries differ")
    assert "at [17] yours 15, expected 17 (off by -2)" in text and "at [13]" in text
    assert text.index("[17]") < text.index("[13]")          # the largest difference first
    assert differences(expected, expected) == "every entry agrees within the tolerance"


@pytest.mark.parametrize("raw, named", [
    ("RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn (cell 'kl', line 3)",
     "cut from the graph"),
    ("ValueError: Attempt to convert a value (None) with an unsupported type (<class 'NoneType'>) to a Tensor.",
     "a gradient that did not come back"),
    ("RuntimeError: all elements of input should be between 0 and 1", "binary_cross_entropy_with_logits"),
    ("RuntimeError: a leaf Variable that requires grad is being used in an in-place operation.", "in place"),
])
def test_framework_errors_are_told_in_what_the_code_did(raw, named):
    text = failure(Reply(error=raw))
    assert named in text and "grad_fn" not in text and "convert a value" not in text and "elements of" not in text
    assert "leaf Variable" not in text
    assert text.endswith("(cell 'kl', line 3)") or "cell" not in raw


def test_sampling_with_the_sign_of_the_log_variance_flipped_is_named():
    case = vc.sampling_case(11, 4000, [-1.2, 0.7])
    mu, lv = case.inputs["z_mean"].astype(np.float64), case.inputs["z_log_var"].astype(np.float64)
    rng = np.random.default_rng(0)
    z, z_again = (mu + np.exp(-0.5 * lv) * rng.standard_normal(mu.shape) for _ in range(2))
    replies = {"k": Reply(arrays={"z": z, "z_again": z_again})}
    with pytest.raises(Mistake, match=r"exp\(-0.5 \* z_log_var\).*sign is flipped"):
        vc.judge_sampling_stats(case.inputs, replies, "k")


@pytest.mark.parametrize("kind, named", [("no_trace", "the trace term"), ("s1s1", "not (S1 S1)^(1/2)"),
                                         ("no_cross", "the cross term")])
def test_frechet_distances_without_a_term_or_with_the_wrong_product_are_named(kind, named):
    from scipy import linalg

    from gencourse.stylegan.assignment import gan_checks as g

    case = g.frechet_case(101, 5)
    mu1, s1, mu2, s2 = (case.inputs[k] for k in ("mu1", "sigma1", "mu2", "sigma2"))
    mean = float((mu1 - mu2) @ (mu1 - mu2))
    cross = {"no_trace": None, "s1s1": np.real(linalg.sqrtm(s1 @ s1)), "no_cross": np.zeros_like(s1)}[kind]
    fd = mean if cross is None else mean + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross)
    replies = {"k": Reply(arrays={"fd": np.array(fd), "is_complex": np.array(0.0)})}
    with pytest.raises(Mistake, match=re.escape(named)):
        g.judge_frechet(case.inputs, replies, "k")


def test_a_step_that_decodes_z_mean_is_named_not_blamed_on_the_kl():
    from gencourse.vae.assignment.step_checks import judge_update

    rng = np.random.default_rng(0)
    g_recon, g_kl, g_recon_mean = (rng.normal(size=50) for _ in range(3))
    w0 = rng.normal(size=50)
    with pytest.raises(Mistake, match="decodes z_mean"):
        judge_update(w0, w0 - 0.01 * (g_recon_mean + g_kl), 0.01, g_recon, g_kl, 20, 16, g_recon_mean=g_recon_mean)
    judge_update(w0, w0 - 0.01 * (g_recon + g_kl), 0.01, g_recon, g_kl, 20, 16, g_recon_mean=g_recon_mean)


def test_latent_ranges_that_sort_the_codes_in_place_are_named():
    from gencourse import reference

    case = vc.ranges_case(31, 500, 2)
    z, labels = case.inputs["z"], case.inputs["labels"]
    ranges = reference.vae.latent_ranges(z.astype(np.float64), labels, int(case.inputs["n_classes"]))
    replies = {"k": Reply(arrays={"ranges": ranges, "changed": np.array([1.0, 0.0])})}
    with pytest.raises(Mistake, match="latent_ranges changed `z` in place"):
        vc.judge_ranges(case.inputs, replies, "k")


def _adversarial_replies(g, g_grad, d, d_grad_real, d_grad_fake):
    return {"k": Reply(arrays={"g_loss": np.array(g), "g_loss_finite": np.array(1.0), "g_grad": g_grad,
                               "missing": np.zeros(1), "d_loss": np.array(d), "d_loss_finite": np.array(1.0),
                               "d_grad_real": d_grad_real, "d_grad_fake": d_grad_fake, "d_missing": np.zeros(2),
                               "float32": np.array(1.0)})}


def test_scores_of_200_do_not_hide_a_wrong_loss_behind_its_tolerance():
    from gencourse.cyclegan.assignment import loss_checks as lc

    case = lc.adversarial_case(152, (1, 3, 7, 1), "lsgan", 3.0, extreme=True)    # the hidden case's scores
    r, f = (case.inputs[k].astype(np.float64) for k in ("d_real", "d_fake"))
    n = f.size

    def judged(target_real=1.0, fake_term=lambda f: f ** 2, fake_grad=lambda f: f):
        d = 0.5 * (np.mean((r - target_real) ** 2) + np.mean(fake_term(f)))
        lc.judge_adversarial(case.inputs, _adversarial_replies(np.mean((f - 1) ** 2), 2 * (f - 1) / n, d,
                                                               (r - target_real) / n, fake_grad(f) / n), "k")

    judged()                                                       # the right answer keeps its points
    with pytest.raises(Mistake, match="target for d_real is 0.9 where it should be 1"):
        judged(0.9)                                                # within 1e-4 of the value: the gradient tells
    odd = np.abs(f) < 1                                            # a wrong term for some moderate scores only
    with pytest.raises(Mistake, match=r"only because the scores of -200 and 200 dominate.*gradient for d_fake.*"
                                      rf"{int(odd.sum())} of {n} entries differ") as e:
        judged(fake_term=lambda f: np.where(odd, 2 * f ** 2, f ** 2), fake_grad=lambda f: np.where(odd, 2 * f, f))
    assert "is right" not in str(e.value)


@pytest.mark.parametrize("kind, named", [
    ("swapped", "arguments are swapped"), ("no_from_logits", "from_logits left out"),
    ("sigmoid_clamped", "clamped at -100"),
])
def test_cross_entropies_with_swapped_arguments_or_without_logits_are_named(kind, named):
    from gencourse.cyclegan.assignment import loss_checks as lc

    case = lc.adversarial_case(151, (1, 5, 5, 1), "bce", extreme=True)
    f = case.inputs["d_fake"].astype(np.float64)
    with np.errstate(divide="ignore"):
        g = {"swapped": np.mean(np.log1p(np.e) - f),                               # BCE(input=1, target=f)
             "no_from_logits": np.mean(-np.log(np.clip(f.astype(np.float32), 1e-7, np.float32(1) - 1e-7))),
             "sigmoid_clamped": np.mean(np.minimum(-np.log(np.float32(1 / (1 + np.exp(-f)))), 100))}[kind]
    replies = _adversarial_replies(g, np.zeros_like(f), 0.0, np.zeros_like(f), np.zeros_like(f))
    with pytest.raises(Mistake, match=named):
        lc.judge_adversarial(case.inputs, replies, "k")
