"""The shipped generator computed in numpy (grader side): the oracle of the Generator checks.

The grader judges the student's whole Generator without a framework of its own (Gradescope's
768 MB hold one framework, the worker's): the shipped weights (stylegan/pretrained/gs.npz, torch
layout, named as the package's torch Generator) run through the paper's generator here, layer by
layer, in the order the package's layers run, each value named for the messages:

  mapping: pixel norm, then per layer an equalized dense (lr_mul) and a leaky ReLU 0.2;
  synthesis: the constant; per styled layer [nearest x2 upsampling,] [a 3x3 equalized convolution,]
  noise, bias, leaky ReLU 0.2, AdaIN with the layer's style A(w) (reference.stylegan); ToRGB
  (1x1, gain 1), tanh (figure 1b; the official layer_epilogue).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...reference import stylegan as ref

GAIN = float(np.sqrt(2.0))


@lru_cache(maxsize=1)
def shipped() -> tuple[dict, object]:
    """(the shipped arrays by name, float64, the shipped config)."""
    from .. import convert, pretrained

    return {k: v.astype(np.float64) for k, v in convert.load(pretrained.WEIGHTS).items()}, pretrained.config()


def _styled_names(num_layers: int) -> list[str]:
    """Each styled layer's name prefix in the arrays: the input epilogue, then the convolutions'."""
    return ["synthesis.input_epilogue"] + [f"synthesis.convs.{i}" for i in range(num_layers - 1)]


def groups(track: str) -> list[tuple[str, list[np.ndarray]]]:
    """(layer name, its weights in the track's layout) in the order the package's layers run."""
    from ..convert import keras_layout

    a, c = shipped()
    layout = (lambda k: a[k].astype(np.float32)) if track == "torch" else \
        (lambda k: keras_layout(k, a[k].astype(np.float32)))   # noqa: E731
    out = [(f"mapping dense {i + 1}", [layout(f"mapping.layers.{i}.weight"), layout(f"mapping.layers.{i}.bias")])
           for i in range(c.mapping_layers)]
    out.append(("the learned constant", [layout("synthesis.const_input.const")]))
    for i, name in enumerate(_styled_names(c.num_layers)):
        epi = name if i == 0 else f"{name}.epilogue"
        if i > 0:
            out.append((f"styled layer {i} convolution", [layout(f"{name}.conv.weight")]))
        out += [(f"styled layer {i} noise", [layout(f"{epi}.noise.weight")]),
                (f"styled layer {i} style A(w)", [layout(f"{epi}.adain.style.{k}") for k in ("weight", "bias")]),
                (f"styled layer {i}", [layout(f"{epi}.bias")])]
    out += [("ToRGB", [layout("synthesis.to_rgb.weight"), layout("synthesis.to_rgb.bias")]),
            ("the generator (w_avg)", [layout("w_avg")])]
    return out


def _lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def _conv(x, w, b=None, gain=GAIN):
    """Equalized k x k convolution, NCHW, zero padding k // 2."""
    k = w.shape[-1]
    p = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))    # n, c, h, w, k, k
    y = np.einsum("nchwij,ocij->nohw", windows, w * gain / np.sqrt(w[0].size), optimize=True)
    return y if b is None else y + b[None, :, None, None]


def _dense(x, w, b, lr_mul=1.0, gain=GAIN):
    return x @ (w * lr_mul * gain / np.sqrt(w.shape[1])).T + b * lr_mul


def styles(z, z2=None, crossover=None, psi=1.0, cutoff=None, record=None) -> np.ndarray:
    """[n, num_layers, w_dim]: w(z) on every layer, mixed with w(z2) at the crossover, truncated."""
    a, c = shipped()

    def mapping(v, rec):
        x = ref.pixel_norm(np.asarray(v, np.float64))
        for i in range(c.mapping_layers):
            h = _dense(x, a[f"mapping.layers.{i}.weight"], a[f"mapping.layers.{i}.bias"], c.mapping_lr_mul)
            if rec is not None:
                rec.append((f"mapping dense {i + 1}", h))
            x = _lrelu(h)
        return np.repeat(x[:, None], c.num_layers, axis=1)

    ws = mapping(z, record)
    if z2 is not None:
        ws = ref.mix_styles(ws, mapping(z2, None), crossover)
    return ws if psi == 1 else ref.truncate(ws, a["w_avg"], psi, cutoff)


def synthesize(ws, noise, record=None) -> np.ndarray:
    """Images [n, 1, R, R] from styles and noise [n, 1, r, r] per layer (NCHW, float64)."""
    a, c = shipped()
    rec = record if record is not None else []
    x = np.repeat(a["synthesis.const_input.const"], len(ws), axis=0)
    rec.append(("the learned constant", x))
    for i, name in enumerate(_styled_names(c.num_layers)):
        epi = name if i == 0 else f"{name}.epilogue"
        if i > 0:
            if i % 2 == 0:                      # the first layer of each resolution after 4x4
                x = x.repeat(2, axis=2).repeat(2, axis=3)
            x = _conv(x, a[f"{name}.conv.weight"])
            rec.append((f"styled layer {i} convolution", x))
        x = x + a[f"{epi}.noise.weight"][None, :, None, None] * np.asarray(noise[i], np.float64)
        rec.append((f"styled layer {i} noise", x))
        style = _dense(ws[:, i], a[f"{epi}.adain.style.weight"], a[f"{epi}.adain.style.bias"], gain=1.0)
        rec.append((f"styled layer {i} style A(w)", style))
        ch = style.shape[1] // 2
        x = _lrelu(x + a[f"{epi}.bias"][None, :, None, None])
        x = ref.adaptive_instance_norm(x.transpose(0, 2, 3, 1), style[:, :ch], style[:, ch:], c.adain_eps)
        x = x.transpose(0, 3, 1, 2)
        rec.append((f"styled layer {i}", x))
    x = _conv(x, a["synthesis.to_rgb.weight"], a["synthesis.to_rgb.bias"], gain=1.0)
    rec.append(("ToRGB", x))
    return np.tanh(x)


def run(track: str, z, noise, **mix) -> tuple[np.ndarray, list]:
    """(images in the track's layout, [(name, value)] in run order, values in the track's layout)."""
    record: list = []
    nchw = [np.asarray(n, np.float64) if track == "torch" else np.asarray(n, np.float64).transpose(0, 3, 1, 2)
            for n in noise]
    images = synthesize(styles(z, record=record, **mix), nchw, record)
    record.append(("the generator (w_avg)", images))
    if track == "tf":
        record = [(k, v.transpose(0, 2, 3, 1) if v.ndim == 4 else v) for k, v in record]
        images = images.transpose(0, 2, 3, 1)
    return images, record
