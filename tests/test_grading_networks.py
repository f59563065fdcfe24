"""Networks judged by what they compute (grading/networks.py): the trusted weights loaded in run order.

A correct network written another way (declaration order, Sequential or not, activations as modules or
functions) must agree; each planted difference that structure cannot see must be named.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gencourse.grading import Mistake
from gencourse.grading.networks import call_inputs, judge_network, trusted_network
from gencourse.grading.tracing import probe_network


class Reference(nn.Module):
    """conv 1->8 s2, ReLU, conv 8->16 s2, LeakyReLU 0.2, global mean, linear to 3."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1)
        self.act, self.lrelu = nn.ReLU(), nn.LeakyReLU(0.2)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.lrelu(self.c2(self.act(self.c1(x)))).mean((2, 3)))


class OtherStyle(nn.Module):
    """The same network: declared in another order, a Sequential, functional activations."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 3)
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1))
        self.second = nn.Conv2d(8, 16, 3, 2, 1)

    def forward(self, x):
        return self.head(F.leaky_relu(self.second(F.relu(self.body(x))), 0.2).mean((2, 3)))


def variant(**change):
    """The reference with one thing changed."""
    class Student(Reference):
        def __init__(self):
            super().__init__()
            if "stride" in change:
                self.c2 = nn.Conv2d(8, 16, 3, change["stride"], 1)
            if change.get("no_bias"):
                self.c2 = nn.Conv2d(8, 16, 3, 2, 1, bias=False)
            if change.get("affine_norm"):
                self.norm = nn.InstanceNorm2d(16, affine=True)

        def forward(self, x):
            h = self.c1(x)
            h = h if change.get("no_relu") else self.act(h)
            h = self.c2(h)
            if change.get("norm"):
                h = F.instance_norm(h)
            if change.get("affine_norm"):
                h = self.norm(h)
            h = F.relu(h) if change.get("relu_for_lrelu") else self.lrelu(h)
            out = self.head(h.mean((2, 3)))
            return torch.tanh(out) if change.get("tanh") else out
    return Student()


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(4, 1, 16, 16)).astype(np.float32)
    return trusted_network(Reference(), x), x


def judged(reference, student):
    ref, x = reference
    inputs = call_inputs(ref, x)
    reply = probe_network(student, **inputs)
    return judge_network(ref, reply, channel_axis=1, what="encoder")


def test_the_same_network_written_another_way_agrees(reference):
    torch.manual_seed(5)                      # other initial weights: the trusted ones are loaded
    assert "computes what the reference does" in judged(reference, OtherStyle())
    assert "computes what the reference does" in judged(reference, variant())


@pytest.mark.parametrize("change, hint", [
    ({"no_relu": True}, "keeps negative values where the reference's output is zero"),
    ({"relu_for_lrelu": True}, "appears nowhere in yours"),
    ({"norm": True}, "a normalization where the reference has none"),
    ({"stride": 1}, "yours gives [4, 16, 8, 8], the reference's [4, 16, 4, 4] from the same input"),
    ({"tanh": True}, "the tanh of the reference's output"),
])
def test_what_structure_cannot_see_is_named(reference, change, hint):
    with pytest.raises(Mistake, match="first departs|every layer agrees") as e:
        judged(reference, variant(**change))
    assert hint in str(e.value), str(e.value)


def test_a_bias_declared_before_its_weight_loads_the_same(reference):
    class BiasFirst(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(o))
            self.weight = nn.Parameter(torch.randn(o, i, 3, 3))
            self.stride = stride

        def forward(self, x):
            return F.conv2d(x, self.weight, self.bias, self.stride, 1)

    class Student(Reference):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = BiasFirst(1, 8, 2), BiasFirst(8, 16, 2)
    assert "computes what the reference does" in judged(reference, Student())


def test_weights_that_do_not_fit_name_the_layer(reference):
    with pytest.raises(Mistake, match="layer 2 with weights .* a layer without its bias"):
        judged(reference, variant(no_bias=True))
    with pytest.raises(Mistake, match="a learned scale and offset of .16. per channel .* affine parameters"):
        judged(reference, variant(affine_norm=True))


def test_keras_functional_models_are_traced_layer_by_layer():
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    def build(missing_relu=False, seed=0):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((16, 16, 1))
        h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation=None if missing_relu else "relu")(inp)
        h = keras.layers.Conv2D(16, 3, strides=2, padding="same")(h)
        return keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(h)))

    x = np.random.default_rng(1).normal(size=(2, 16, 16, 1)).astype(np.float32)
    ref = trusted_network(build(), x)
    inputs = call_inputs(ref, x)
    ok = probe_network(build(seed=3), inputs["x"], inputs["weights_flat"], inputs["weights_table"])
    assert "computes what the reference does" in judge_network(ref, ok, channel_axis=-1)
    bad = probe_network(build(True, seed=3), inputs["x"], inputs["weights_flat"], inputs["weights_table"])
    with pytest.raises(Mistake, match="keeps negative values"):
        judge_network(ref, bad, channel_axis=-1)


def test_keras_subclassed_layers_are_traced_in_run_order():
    """The package's own Keras MappingNetwork (a subclassed layer) against a student's written in another
    declaration order, and one without the pixel norm."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    from keras import ops

    from gencourse.stylegan.tf_models import EqualizedDense, MappingNetwork

    class Student(keras.layers.Layer):
        def __init__(self, norm=True):
            super().__init__()
            self.last = EqualizedDense(8, 8, lr_mul=0.01)            # declared first, runs last
            self.first = EqualizedDense(8, 8, lr_mul=0.01)
            self.norm = norm

        def call(self, z):
            if self.norm:
                z = z * ops.rsqrt(ops.mean(ops.square(z), axis=-1, keepdims=True) + 1e-8)
            return ops.leaky_relu(self.last(ops.leaky_relu(self.first(z), 0.2)), 0.2)

    keras.utils.set_random_seed(0)
    x = (3 * np.random.default_rng(2).normal(size=(5, 8))).astype(np.float32)
    ref = trusted_network(MappingNetwork(8, 8, 2), x)
    inputs = call_inputs(ref, x)
    ok = probe_network(Student(), inputs["x"], inputs["weights_flat"], inputs["weights_table"])
    assert "computes what the reference does" in judge_network(ref, ok, channel_axis=-1)
    bad = probe_network(Student(norm=False), inputs["x"], inputs["weights_flat"], inputs["weights_table"])
    with pytest.raises(Mistake, match="first departs from it at the reference's layer 'pixel_norm"):
        judge_network(ref, bad, channel_axis=-1)


def test_keras_layers_built_on_their_first_call_are_traced_without_a_warning():
    """A student's layers that make their weights in build(), the Keras way: their weights load in run order
    (before, the trace asked each layer for its weights before it had any: "your network has 0 layers with
    weights"), and Keras's symbolic build call no longer meets the recording, which broke it into an "unbuilt
    state" warning in the student's output."""
    import os
    import warnings

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    from keras import ops

    from gencourse.stylegan.tf_models import MappingNetwork

    class LazyEqualizedDense(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 8), initializer="random_normal")
            self.b = self.add_weight(shape=(8,), initializer="zeros")

        def call(self, x):
            return ops.matmul(x, self.w * (0.01 * 2 ** 0.5 / 8 ** 0.5)) + self.b * 0.01

    class Student(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.dense = [LazyEqualizedDense(), LazyEqualizedDense()]

        def call(self, z):
            z = z * ops.rsqrt(ops.mean(ops.square(z), axis=-1, keepdims=True) + 1e-8)
            for layer in self.dense:
                z = ops.leaky_relu(layer(z), 0.2)
            return z

    keras.utils.set_random_seed(0)
    x = (3 * np.random.default_rng(3).normal(size=(4, 8))).astype(np.float32)
    ref = trusted_network(MappingNetwork(8, 8, 2), x)
    inputs = call_inputs(ref, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reply = probe_network(Student(), inputs["x"], inputs["weights_flat"], inputs["weights_table"])
    assert [str(w.message)[:60] for w in caught if "unbuilt state" in str(w.message)] == []
    assert "computes what the reference does" in judge_network(ref, reply, channel_axis=-1)


class Padded(nn.Module):
    """Reflection pad 2, conv 5x5, instance norm, ReLU, then x + [reflect pad 1, conv 3x3, norm](x), then
    reflect pad 1, conv 3x3, tanh."""

    def __init__(self, pad=nn.ReflectionPad2d, fused=False, residual=True, tanh=True, affine=False):
        super().__init__()
        self.stem = nn.Sequential(*([nn.Conv2d(2, 6, 5, padding=2)] if fused else [pad(2), nn.Conv2d(2, 6, 5)]),
                                  nn.InstanceNorm2d(6, affine=affine), nn.ReLU())
        self.block = nn.Sequential(pad(1), nn.Conv2d(6, 6, 3), nn.InstanceNorm2d(6, affine=affine))
        self.out = nn.Sequential(pad(1), nn.Conv2d(6, 2, 3))
        self.residual, self.tanh = residual, tanh

    def forward(self, x):
        h = self.stem(x)
        h = self.out(h + self.block(h) if self.residual else self.block(h))
        return torch.tanh(h) if self.tanh else h


@pytest.mark.parametrize("change, hint", [
    ({"pad": nn.ZeroPad2d}, "outer 2 pixel(s) are zero in yours but not in the reference's: zero padding"),
    ({"pad": nn.ReplicationPad2d}, "only the outer 2 pixel(s) differ: another padding at the image border"),
    ({"fused": True}, "at the reference's layer 'stem.0' (and the values differ at its layer 'stem.1'): the inside "
                      "agrees and only the outer 2 pixel(s) differ"),
    ({"residual": False}, "at the input of the reference's layer 'out.0' (what runs between two layers): it is the "
                          "reference's value minus the output of the reference's layer 'stem.3': a skip (residual) "
                          "connection missing"),
    ({"tanh": False}, "the reference applies a tanh there and yours does not"),
])
def test_padding_skips_and_a_missing_last_activation_are_named(change, hint):
    torch.manual_seed(0)
    x = np.random.default_rng(3).normal(size=(2, 2, 12, 12)).astype(np.float32)
    ref = trusted_network(Padded(), x)
    inputs = call_inputs(ref, x)
    with pytest.raises(Mistake) as e:
        judge_network(ref, probe_network(Padded(**change), *(inputs[k] for k in
                                         ("x", "weights_flat", "weights_table", "structure"))), channel_axis=1)
    assert hint in str(e.value), str(e.value)


def test_affine_parameters_on_every_normalization_are_named():
    torch.manual_seed(0)
    x = np.random.default_rng(3).normal(size=(2, 2, 12, 12)).astype(np.float32)
    ref = trusted_network(Padded(), x)
    inputs = call_inputs(ref, x)
    with pytest.raises(Mistake, match="2 layers with weights hold a learned scale and offset per channel .* affine"):
        judge_network(ref, probe_network(Padded(affine=True), *(inputs[k] for k in
                                         ("x", "weights_flat", "weights_table", "structure"))), channel_axis=1)


def test_values_moved_by_one_pixel_are_named():
    from gencourse.grading.networks import describe_difference

    want = np.random.default_rng(4).normal(size=(1, 3, 10, 10))
    named, text = describe_difference(want, np.roll(want, (1, 1), axis=(2, 3)), channel_axis=1)
    assert named and "moved by (1, 1) pixels" in text


def test_layers_without_weights_written_as_functions_agree():
    """Padding, normalization and activation as functions between the convolutions: their outputs show
    nowhere, the next convolution's input does."""
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = nn.Conv2d(2, 6, 5), nn.Conv2d(6, 6, 3), nn.Conv2d(6, 2, 3)

        def forward(self, x):
            pad = lambda t, p: F.pad(t, (p, p, p, p), mode="reflect")  # noqa: E731
            h = F.relu(F.instance_norm(self.c1(pad(x, 2))))
            return torch.tanh(self.c3(pad(h + F.instance_norm(self.c2(pad(h, 1))), 1)))

    torch.manual_seed(0)
    x = np.random.default_rng(3).normal(size=(2, 2, 12, 12)).astype(np.float32)
    ref = trusted_network(Padded(), x)
    inputs = call_inputs(ref, x)
    reply = probe_network(Functional(), *(inputs[k] for k in ("x", "weights_flat", "weights_table", "structure")))
    assert "computes what the reference does" in judge_network(ref, reply, channel_axis=1)


class TwoHeads(nn.Module):
    """Image and an integer label in; (mean, log-variance, a sample) out, like a VAE's encoder."""

    def __init__(self, relu_on_second=False, random_first=False):
        super().__init__()
        self.body, self.mean, self.log_var = nn.Linear(16 + 3, 8), nn.Linear(8, 2), nn.Linear(8, 2)
        self.relu_on_second, self.random_first = relu_on_second, random_first

    def forward(self, x, labels):
        h = F.relu(self.body(torch.cat([x.flatten(1), F.one_hot(labels, 3).float()], 1)))
        mean, log_var = self.mean(h), self.log_var(h)
        if self.relu_on_second:
            log_var = F.relu(log_var)
        if self.random_first:
            mean = mean + torch.randn_like(mean)
        return mean, log_var, mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)


def test_several_inputs_and_outputs_random_ones_declared():
    """Integer labels go in as integers; every output is compared but a declared random one; an undeclared
    random output, and a function between the layers, are named."""
    torch.manual_seed(0)
    x = [np.random.default_rng(2).normal(size=(5, 1, 4, 4)).astype(np.float32), np.array([0, 2, 1, 1, 0])]
    ref = trusted_network(TwoHeads(), x)
    inputs = call_inputs(ref, x[0])

    def judged(net):
        reply = probe_network(net, x, inputs["weights_flat"], inputs["weights_table"])
        return judge_network(ref, reply, channel_axis=1, may_vary=(2,))

    assert "computes what the reference does" in judged(TwoHeads())
    with pytest.raises(Mistake, match="output 1 of your network changes from one run to the next"):
        judged(TwoHeads(random_first=True))
    with pytest.raises(Mistake, match="zero where the reference is negative"):
        judged(TwoHeads(relu_on_second=True))


def test_values_in_another_order_are_described_as_such():
    from gencourse.grading.networks import describe_difference

    want = np.random.default_rng(0).normal(size=(3, 4, 2, 2))
    named, text = describe_difference(want, want.transpose(0, 2, 3, 1).reshape(want.shape), channel_axis=1)
    assert named and "another order" in text
