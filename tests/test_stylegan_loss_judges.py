"""StyleGAN's losses judged in both tracks, in this process: the cross-entropy's known mistakes (arguments
swapped, from_logits left out, a sigmoid and then the cross-entropy of probabilities, another target) lose
their points with their cause; correct forms written another way (softplus, log-sigmoid, the stable formula
by hand, the framework's cross-entropy from logits) keep every point."""

from __future__ import annotations

import numpy as np
import pytest

from gencourse.grading import Mistake, Reply, get_assignment
from gencourse.grading.inprocess import judge_in_process
from gencourse.stylegan.assignment import gan_checks as g

G_LOSS = "generator_loss: the non-saturating loss, mean softplus(-D(G(z)))"
D_LOSS = "discriminator_loss: the logistic loss on logits"
R1 = "r1_penalty: gamma / 2 * E |grad_x D(x)|^2 on the reals, differentiable for D's weights"
IMPORTS = {"torch": "import torch\nfrom torch import nn\nF = nn.functional\n",
           "tf": "import keras\nimport tensorflow as tf\nfrom keras import ops\n"}

# track -> form -> (generator_loss body, discriminator_loss body); None keeps the solution's
CORRECT = {
    "torch": {
        "softplus": ("return F.softplus(-d_fake).mean()", "return F.softplus(d_fake).mean() + F.softplus(-d_real).mean()"),
        "log_sigmoid": ("return -F.logsigmoid(d_fake).mean()",
                        "return -(F.logsigmoid(d_real) + F.logsigmoid(-d_fake)).mean()"),
        "by_hand": ("z = -d_fake\nreturn (z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))).mean()",
                    "sp = lambda z: z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))\n"
                    "return sp(d_fake).mean() + sp(-d_real).mean()"),
        "bce_logits": ("return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))",
                       "return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))\n"
                       "        + nn.BCEWithLogitsLoss()(d_fake, torch.zeros_like(d_fake)))"),
    },
    "tf": {
        "softplus": ("return ops.mean(ops.softplus(-d_fake))",
                     "return ops.mean(tf.nn.softplus(d_fake)) + ops.mean(tf.nn.softplus(-d_real))"),
        "log_sigmoid": ("return -ops.mean(ops.log_sigmoid(d_fake))",
                        "return -ops.mean(ops.log_sigmoid(d_real)) - ops.mean(ops.log_sigmoid(-d_fake))"),
        "by_hand": ("z = -d_fake\nreturn ops.mean(ops.maximum(z, 0.0) + ops.log1p(ops.exp(-ops.abs(z))))",
                    "sp = lambda z: ops.maximum(z, 0.0) + ops.log1p(ops.exp(-ops.abs(z)))\n"
                    "return ops.mean(sp(d_fake)) + ops.mean(sp(-d_real))"),
        "bce_logits": ("return keras.losses.BinaryCrossentropy(from_logits=True)(ops.ones_like(d_fake), d_fake)",
                       "return (ops.mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(d_real), "
                       "logits=d_real))\n        + keras.losses.BinaryCrossentropy(from_logits=True)"
                       "(ops.zeros_like(d_fake), d_fake))"),
        # keras.ops.sigmoid keeps its logits on the result, and Keras' cross-entropy uses them: stable, correct
        "keras_sigmoid": ("return keras.losses.BinaryCrossentropy()(ops.ones_like(d_fake), ops.sigmoid(d_fake))",
                          "bce = keras.losses.BinaryCrossentropy()\n"
                          "return bce(ops.ones_like(d_real), ops.sigmoid(d_real)) + "
                          "bce(ops.zeros_like(d_fake), ops.sigmoid(d_fake))"),
    },
}

# track -> mistake -> (generator_loss body, discriminator_loss body, the cause each message must name)
WRONG = {
    "torch": {
        "swapped": ("return F.binary_cross_entropy_with_logits(torch.ones_like(d_fake), d_fake)",
                    "return (F.binary_cross_entropy_with_logits(torch.ones_like(d_real), d_real)\n"
                    "        + F.binary_cross_entropy_with_logits(torch.zeros_like(d_fake), d_fake))",
                    "arguments are swapped"),
        "swapped_fakes": (None, "return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))\n"
                                "        + F.binary_cross_entropy_with_logits(torch.zeros_like(d_fake), d_fake))",
                          "arguments are swapped for d_fake"),
        "no_logits": ("return F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))",
                      "return (F.binary_cross_entropy(d_real, torch.ones_like(d_real))\n"
                      "        + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake)))",
                      "use binary_cross_entropy_with_logits"),
        "sigmoid_then": ("return F.binary_cross_entropy(torch.sigmoid(d_fake), torch.ones_like(d_fake))",
                         "return (nn.BCELoss()(torch.sigmoid(d_real), torch.ones_like(d_real))\n"
                         "        + nn.BCELoss()(torch.sigmoid(d_fake), torch.zeros_like(d_fake)))",
                         "clamped at -100"),
        "smoothed": ("return F.binary_cross_entropy_with_logits(d_fake, torch.full_like(d_fake, 0.9))",
                     "return (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, 0.9))\n"
                     "        + F.softplus(d_fake).mean())",
                     "is 0.9 where it should be 1"),
        "detached": ("return F.softplus(-d_fake.detach()).mean()", None, "no gradient reaches d_fake"),
    },
    "tf": {
        "swapped": ("return keras.losses.BinaryCrossentropy(from_logits=True)(d_fake, ops.ones_like(d_fake))",
                    "bce = keras.losses.BinaryCrossentropy(from_logits=True)\n"
                    "return bce(d_real, ops.ones_like(d_real)) + bce(d_fake, ops.zeros_like(d_fake))",
                    "arguments are swapped"),
        "swapped_fakes": (None, "bce = keras.losses.BinaryCrossentropy(from_logits=True)\n"
                                "return bce(ops.ones_like(d_real), d_real) + bce(d_fake, ops.zeros_like(d_fake))",
                          "arguments are swapped for d_fake"),
        "no_logits": ("return keras.losses.BinaryCrossentropy()(ops.ones_like(d_fake), d_fake)",
                      "bce = keras.losses.BinaryCrossentropy()\n"
                      "return bce(ops.ones_like(d_real), d_real) + bce(ops.zeros_like(d_fake), d_fake)",
                      "from_logits left out"),
        "sigmoid_then": ("return keras.losses.BinaryCrossentropy()(ops.ones_like(d_fake), tf.sigmoid(d_fake))",
                         "bce = keras.losses.BinaryCrossentropy()\n"
                         "return bce(ops.ones_like(d_real), tf.sigmoid(d_real)) + "
                         "bce(ops.zeros_like(d_fake), tf.sigmoid(d_fake))",
                         "taken of 1e-7 instead"),
        "smoothed": ("return keras.losses.BinaryCrossentropy(from_logits=True)(ops.full_like(d_fake, 0.9), d_fake)",
                     "return (keras.losses.BinaryCrossentropy(from_logits=True)(ops.full_like(d_real, 0.9), d_real)\n"
                     "        + ops.mean(ops.softplus(d_fake)))",
                     "is 0.9 where it should be 1"),
        "detached": ("return ops.mean(ops.softplus(-ops.stop_gradient(d_fake)))", None, "no gradient reaches d_fake"),
    },
}


def _namespace(track, g_body, d_body):
    """The solution's losses, with the given bodies in their place."""
    models = {"torch": "gencourse.stylegan.torch_models", "tf": "gencourse.stylegan.tf_models"}[track]
    ns: dict = {}
    exec(IMPORTS[track] + f"from {models} import generator_loss, discriminator_loss, r1_penalty\n", ns)
    for name, args, body in (("generator_loss", "d_fake", g_body), ("discriminator_loss", "d_real, d_fake", d_body)):
        if body is not None:
            exec(f"def {name}({args}):\n" + "".join(f"    {line}\n" for line in body.splitlines()), ns)
    return ns


def _judged(track, ns, names):
    assignment = get_assignment(f"stylegan-{track}")
    checks = [c for c in assignment.checks if c.name in names]
    assert len(checks) == len(names)
    return {c.name: (score, c.points, message) for c, score, message in judge_in_process(assignment, checks, ns)}


@pytest.fixture(params=["torch", "tf"])
def track(request):
    if request.param == "tf":
        pytest.importorskip("tensorflow")
    return request.param


def test_correct_forms_keep_every_point(track):
    for form, (g_body, d_body) in CORRECT[track].items():
        for name, (score, points, message) in _judged(track, _namespace(track, g_body, d_body),
                                                      (G_LOSS, D_LOSS)).items():
            assert score == points, (form, name, message)


@pytest.mark.parametrize("mistake", sorted(WRONG["torch"]))
def test_cross_entropy_mistakes_lose_points_with_their_cause(track, mistake):
    g_body, d_body, cause = WRONG[track][mistake]
    judged = _judged(track, _namespace(track, g_body, d_body), (G_LOSS, D_LOSS))
    for name, body in ((G_LOSS, g_body), (D_LOSS, d_body)):
        score, points, message = judged[name]
        if body is None:
            assert score == points, (name, message)
        else:
            assert score < points and cause in message, (name, message)
            assert "Traceback" not in message and "RuntimeError" not in message, message


def test_r1_of_a_probability_or_of_the_loss_is_named(track):
    grad = {"torch": "(g,) = torch.autograd.grad(({}).sum(), x, create_graph=True)\n",
            "tf": "with tf.GradientTape() as tape:\n    tape.watch(x)\n    y = {}\ng = tape.gradient(y, x)\n"}[track]
    x = {"torch": "x = reals.detach().requires_grad_(True)\n", "tf": "x = reals\n"}[track]
    total = {"torch": "return gamma / 2 * g.pow(2).flatten(1).sum(dim=1).mean()",
             "tf": "return gamma / 2 * ops.mean(ops.sum(ops.square(g), axis=[1, 2, 3]))"}[track]
    sig, sp = {"torch": ("torch.sigmoid", "F.softplus"), "tf": ("ops.sigmoid", "ops.softplus")}[track]
    for inner, cause in ((f"{sig}(discriminator(x))", "the gradient of sigmoid(D(x))"),
                         (f"{sp}(-discriminator(x))", "the gradient of the loss softplus(-D(x))")):
        ns = _namespace(track, None, None)
        exec("def r1_penalty(discriminator, reals, gamma):\n"
             + "".join(f"    {line}\n" for line in (x + grad.format(inner) + total).splitlines()), ns)
        score, points, message = _judged(track, ns, (R1,))[R1]
        assert score < points and cause in message, message


def _replies(g, g_grad):
    return {"k": Reply(arrays={"g_loss": np.array(g), "g_grad": g_grad, "missing": np.zeros(1)})}


def test_scores_of_150_do_not_hide_a_wrong_term_behind_the_tolerance():
    """A term wrong for the moderate scores only, within the value's tolerance because the logits of -150 and
    150 dominate it: the gradient shows it, and the message never says the loss is right."""
    case = g.logits_case(92, 5, 10.0, extreme=True)
    f = case.inputs["d_fake"].astype(np.float64)
    n = f.size
    sp = np.logaddexp(0.0, -f)
    odd = np.argmin(np.abs(f))                  # one moderate score whose term is off by 1e-3 of the value
    terms, grad = sp.copy(), -1 / (1 + np.exp(f)) / n
    terms[odd] += 1e-4 * sp.mean() * n * 0.5
    grad[odd] *= 1.5
    with pytest.raises(Mistake, match=r"only because the scores of -150 and 150 dominate.*gradient for d_fake.*"
                                      r"1 of 7 entries differ") as e:
        g.judge_generator_loss(case.inputs, _replies(terms.mean(), grad), "k")
    assert "is right" not in str(e.value)
    g.judge_generator_loss(case.inputs, _replies(sp.mean(), -1 / (1 + np.exp(f)) / n), "k")   # the right one
