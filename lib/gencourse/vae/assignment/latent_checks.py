"""Judges of the latent-space parts (grader side): ranges per digit, the manifold's grid and image, the
CVAE's conditioning."""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, close, differences, get, kept_inputs, ok_reply, show, unflatten
from ...reference import vae as ref
from .network_checks import trusted_net, trusted_weights, weight_shapes


# --------------------------------------------------------------------- latent ranges

def ranges_case(seed: int, n: int, dims: int, offset: float = 0.0, singleton: int | None = None,
                percentile: float = 0.0, absent: int | None = None, n_classes: int = 10) -> Case:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    labels[:n_classes] = rng.permutation(n_classes)           # every class present
    if singleton is not None:
        labels[labels == singleton] = (singleton + 1) % n_classes
        labels[rng.integers(n)] = singleton
    if absent is not None:
        labels[labels == absent] = (absent + 1) % n_classes
    z = (rng.normal(size=(n, dims)) * 2 + labels[:, None] * 0.3 + offset).astype(np.float32)
    z[rng.integers(n, size=3)] *= 6.0                        # a few outlying codes, as a trained encoder has
    label = f"seed {seed}, {n} codes of dimension {dims}" + (
        f", digit {singleton} only once" if singleton is not None else "") + (
        f", no code of digit {absent}" if absent is not None else "") + (
        ", all codes below zero" if offset < 0 else "") + (f", percentile={percentile:g}" if percentile else "")
    return Case(label, {"z": z, "labels": labels.astype(np.int64), "n_classes": np.array(n_classes),
                        "percentile": np.array(float(percentile))})


def judge_ranges(inputs, replies, key):
    z, labels = inputs["z"].astype(np.float64), inputs["labels"]
    k, p = int(inputs["n_classes"]), float(inputs["percentile"])
    expected = ref.latent_ranges(z, labels, k, percentile=p)
    dims = z.shape[1]
    got = np.asarray(ok_reply(replies, key).arrays.get("ranges", np.zeros(0)), np.float64)
    kept_inputs(replies, key, ("z", "labels"), "latent_ranges")      # the notebook plots the same codes
    if got.shape != expected.shape:
        for axes in [(1, 0, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1)]:
            if got.shape == np.transpose(expected, axes).shape and close(np.nan_to_num(got),
                                                                         np.nan_to_num(np.transpose(expected, axes))):
                raise Mistake(f"the axes are in another order: expected shape [{k} digits, {dims} latent "
                              f"dimensions, 2 (low, high)], got {list(got.shape)}")
        raise Mistake(f"expected shape [{k}, {dims}, 2] (digit, latent dimension, (low, high)); got {list(got.shape)}")
    empty = np.isnan(expected)
    if empty.any() and not np.isnan(got[empty]).all():
        digit = int(np.argwhere(empty)[0][0])
        raise Mistake(f"digit {digit} has no code, so its ranges must be NaN; got {show(got[digit])} "
                      "(start from NaN, not from 0 or +-infinity, and fill only the digits that occur)")
    if np.isnan(got[~empty]).any():
        c, d, j = np.argwhere(np.isnan(got) & ~empty)[0]
        raise Mistake(f"digit {c}, dimension {d} came back NaN although the digit has codes")
    got, want = got[~empty].reshape(-1, dims, 2), expected[~empty].reshape(-1, dims, 2)
    if close(got, want):
        return
    if close(got, want[..., ::-1]):
        raise Mistake("low and high are swapped: the last axis is (low, high)")
    if dims == 2 and close(got, np.swapaxes(want, 1, 2)):
        raise Mistake("the last two axes are swapped: ranges[digit, dim] should be (low, high) of that dimension")
    if close(got, np.stack([np.minimum(want[..., 0], 0), np.maximum(want[..., 1], 0)], -1)):
        raise Mistake("the ranges include 0 where the codes never reach it: start from the data, not from 0")
    if p:
        if close(got, ref.latent_ranges(z, labels, k)[~empty].reshape(-1, dims, 2)):
            raise Mistake(f"percentile={p:g} gave the min and max: take the {p:g}th and {100 - p:g}th percentiles")
        both = ref.latent_ranges(z, labels, k, percentile=p)[~empty].reshape(-1, dims, 2)
        if close(got, np.stack([both[..., 0], both[..., 0]], -1)):
            raise Mistake(f"low and high are both the {p:g}th percentile: high is the {100 - p:g}th")
        for scale, how in ((0.01, "read as a fraction (np.quantile takes q in [0, 1], np.percentile p in [0, 100])"),
                           (100.0, "multiplied by 100 (np.percentile takes p in [0, 100])")):
            q = p * scale
            if 0 <= q <= 50:
                if close(got, ref.latent_ranges(z, labels, k, percentile=q)[~empty].reshape(-1, dims, 2)):
                    raise Mistake(f"the percentile was {how}")
    wrong = np.argwhere(~np.isclose(got, want, rtol=1e-4, atol=1e-4))
    c, d, j = wrong[0]
    raise Mistake(f"{'low' if j == 0 else 'high'} of dimension {d} of the {c + 1}th digit with codes: expected "
                  f"{want[c, d, j]:.4g}, got {got[c, d, j]:.4g}")


# --------------------------------------------------------------------- the manifold

METHODS = ("linear", "normal")


def grid_case(seed: int, n: int, method: str, low=(-3.0, -2.0), high=(2.5, 3.5)) -> Case:
    label = f"n={n}, method={method!r}" + (f", low={list(low)}, high={list(high)}" if method == "linear" else "")
    return Case(label, {"n": np.array(n), "low": np.array(low, np.float64), "high": np.array(high, np.float64),
                        "method": np.array(METHODS.index(method))})


def judge_grid(inputs, replies, key):
    n, method = int(inputs["n"]), METHODS[int(inputs["method"])]
    expected = ref.latent_grid(n, inputs["low"], inputs["high"], method)
    got = get(replies, key, "grid")
    if got.shape != expected.shape:
        raise Mistake(f"expected {n * n} codes of 2 dimensions, shape [{n * n}, 2]; got {list(got.shape)}")
    if close(got, expected, rtol=1e-5, atol=1e-6):
        return
    xs, ys = expected[:n, 0], expected[::n, 1]
    rows = got.reshape(n, n, 2)
    if close(got, expected[:, ::-1]):
        raise Mistake("the two coordinates of every code are swapped: column j gives z[0], row i gives z[1]")
    if close(rows.transpose(1, 0, 2).reshape(-1, 2), expected):
        raise Mistake("the codes go column by column: list them row by row (row i, then its columns j)")
    if close(rows[::-1].reshape(-1, 2), expected):
        raise Mistake("the rows go from low to high z[1]: the top row has the highest z[1] (z[1] up, as on the "
                      "scatter)")
    if method == "normal" and close(got[:, 0], np.tile(np.linspace(0.05, 0.95, n), n)):
        raise Mistake("the probabilities themselves, not Phi^-1 of them: apply the inverse normal CDF "
                      "(scipy.stats.norm.ppf, statistics.NormalDist().inv_cdf)")
    if not close(rows[0, :, 0], xs):
        raise Mistake(f"the first row's z[0] should run {show(xs, n)}; got {show(rows[0, :, 0], n)}")
    raise Mistake(f"the first column's z[1] should run {show(ys, n)} from top to bottom; got {show(rows[:, 0, 1], n)}")


def decode(track: str, decoder_flat, codes) -> np.ndarray:
    """The grader's decoder with the case's weights, on `codes`: [N, 28, 28]."""
    shapes = weight_shapes(track, "decoder", 2)
    decoder = trusted_net(track, "decoder", 2, 0, None, unflatten(decoder_flat, shapes, "the decoder"))
    if track == "tf":
        return np.asarray(decoder(np.asarray(codes, np.float32)), np.float64)[..., 0]
    import torch

    with torch.no_grad():
        return decoder(torch.as_tensor(np.asarray(codes, np.float32))).double().numpy()[:, 0]


def manifold_case(track: str, seed: int, n: int, method: str = "linear") -> Case:
    weights = trusted_weights(track, "decoder", 2, 0, seed)
    codes = ref.latent_grid(n, (-2.0, -1.5), (2.5, 2.0), method)
    return Case(f"the grid of n={n} ({method}) decoded by a decoder of seed {seed}",
                {"codes": codes, "n": np.array(n),
                 "decoder_flat": np.concatenate([w.ravel() for w in weights]).astype(np.float32)})


def judge_manifold(track: str):
    def judge_one(inputs, replies, key):
        n = int(inputs["n"])
        images = decode(track, inputs["decoder_flat"], inputs["codes"])
        expected = ref.manifold_image(images, n)
        got = get(replies, key, "image")
        if got.shape != expected.shape:
            hint = " (a channel axis left in? squeeze it)" if got.size == expected.size else ""
            raise Mistake(f"expected one image of shape [{28 * n}, {28 * n}] ({n} x {n} digits of 28 x 28); "
                          f"got {list(got.shape)}{hint}")
        if close(got, expected, rtol=1e-3, atol=1e-4):
            return
        tiles = images.reshape(n, n, 28, 28)
        for variant, hint in [
            (images.reshape(n * 28, n * 28), "the decoded images were reshaped straight into one image, which cuts "
                                             "them into strips: put tile (i, j) at rows 28i.., columns 28j.."),
            (ref.manifold_image(tiles.transpose(1, 0, 2, 3).reshape(-1, 28, 28), n),
             "the tiles are transposed: code i * n + j goes to row i, column j"),
            (ref.manifold_image(tiles[::-1].reshape(-1, 28, 28), n), "the rows of tiles are in reverse order"),
            (expected.T, "the whole image is transposed"),
        ]:
            if close(got, variant, rtol=1e-3, atol=1e-4):
                raise Mistake(hint)
        diff = np.abs(got - expected).reshape(n, 28, n, 28).max(axis=(1, 3))
        i, j = np.unravel_index(np.argmax(diff), diff.shape)
        raise Mistake(f"the tile at row {i}, column {j} differs from the decoded code {show(inputs['codes'][i * n + j])} "
                      f"by up to {diff[i, j]:.3g}")
    return judge_one


# --------------------------------------------------------------------- conditioning

def condition_case(seed: int, n: int, width: int, n_classes: int = 10, float64: bool = False) -> Case:
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, width)).astype(np.float64 if float64 else np.float32)
    labels = rng.integers(0, n_classes, n).astype(np.int64)
    return Case(f"seed {seed}, features [{n}, {width}] of {'float64' if float64 else 'float32'}, {n_classes} classes",
                {"h": h, "labels": labels, "n_classes": np.array(n_classes)})


def judge_condition(inputs, replies, key):
    h, labels, k = inputs["h"].astype(np.float64), inputs["labels"], int(inputs["n_classes"])
    onehot = np.eye(k)[labels]
    expected = np.concatenate([h, onehot], axis=-1)
    n, width = h.shape
    got = get(replies, key, "out")
    again = get(replies, key, "out_again")
    if not np.array_equal(got, again):
        raise Mistake("two calls with the same input gave different answers")
    if got.shape == expected.shape:
        if close(got, np.concatenate([onehot, h], axis=-1)) and not close(got, expected):
            raise Mistake("the one-hot digit comes first: put the features first, then the one-hot digit "
                          "(the trusted encoder and decoder expect that order)")
        if not close(got, expected):
            raise Mistake(f"expected the features followed by the one-hot digit: {differences(got, expected)}")
        bits, want = int(get(replies, key, "bits")), inputs["h"].dtype.itemsize * 8
        if bits != want:
            raise Mistake(f"the values are right but the result is {bits}-bit floats for {want}-bit features: "
                          "convert the one-hot vector to h's dtype, or the next layer gets mixed dtypes")
        return
    if got.shape == (n, width + 1):
        raise Mistake(f"the output has {width + 1} columns: the digit went in as a number; append its one-hot "
                      f"vector ({k} columns)")
    if got.shape == (n, width + 10) and k != 10:
        raise Mistake(f"the one-hot vector has 10 columns but n_classes is {k}: use the n_classes argument")
    if got.shape == (2 * n, width) or got.shape[0] != n:
        raise Mistake(f"expected shape [{n}, {width + k}] (one row per example); got {list(got.shape)}: "
                      "concatenate along the last axis")
    raise Mistake(f"expected shape [{n}, {width + k}] (features then one-hot digit); got {list(got.shape)}")
