"""DiffAugment (translation, cutout): what each policy does, its ranges, and the same
augmentation and gradient in numpy, PyTorch and Keras."""

import numpy as np
import pytest
import torch

from gencourse.stylegan import augment, common


def _shift(img: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """out[i, j] = img[i + dr, j + dc], zero outside (written out by hand)."""
    size = img.shape[0]
    out = np.zeros_like(img)
    for i in range(size):
        for j in range(size):
            if 0 <= i + dr < size and 0 <= j + dc < size:
                out[i, j] = img[i + dr, j + dc]
    return out


def test_translation_is_an_integer_shift_of_at_most_an_eighth_with_zero_fill():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, (40, 32, 32)).astype(np.float32)     # no zeros of its own
    out = augment.apply(x, *augment.draw(np.random.default_rng(1), 40, 32, "translation"))
    seen = set()
    for img, aug in zip(x, out):
        matches = [(dr, dc) for dr in range(-4, 5) for dc in range(-4, 5)
                   if np.array_equal(_shift(img, dr, dc), aug)]
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert len(seen) > 20                          # many different shifts among 81


def test_cutout_zeroes_one_square_of_half_the_side_clipped_at_the_border():
    x = np.ones((400, 32, 32), np.float32)
    out = augment.apply(x, *augment.draw(np.random.default_rng(2), 400, 32, "cutout"))
    centres = []
    for img in out:
        rows, cols = np.nonzero(img == 0)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert (img[r0:r1, c0:c1] == 0).all() and (img == 0).sum() == (r1 - r0) * (c1 - c0)
        assert r1 - r0 <= 16 and c1 - c0 <= 16
        if 0 < r0 and r1 < 32:                     # not clipped: the full 16 rows
            assert r1 - r0 == 16
        centres.append(r0 + 8 if r0 > 0 else r1 - 8)
    assert min(centres) <= 1 and max(centres) >= 31       # centres over the whole image


def test_no_policy_draws_nothing_and_unknown_policies_are_refused():
    rng = np.random.default_rng(3)
    index, mask = augment.draw(rng, 2, 8, "")
    np.testing.assert_array_equal(index, np.tile(np.arange(64), (2, 1)))
    assert mask.all()
    assert rng.random() == np.random.default_rng(3).random()       # the stream untouched
    with pytest.raises(ValueError, match="colour"):
        augment.parse_policy("translation,colour")
    with pytest.raises(ValueError, match="policy"):
        common.StyleGANConfig(augment="flip")


@pytest.mark.parametrize("channels", [1, 3])
def test_both_tracks_apply_the_same_augmentation_and_pass_its_gradient(channels):
    import tensorflow as tf

    from gencourse.stylegan import tf_track, torch_track

    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 16, 16, channels)).astype(np.float32)       # NHWC
    aug = augment.draw(rng, 5, 16, "translation,cutout")
    expected = augment.apply(x, *aug)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    out = torch_track.diff_augment(xt, *aug)
    np.testing.assert_array_equal(out.detach().numpy().transpose(0, 2, 3, 1), expected)
    np.testing.assert_array_equal(np.asarray(tf_track.diff_augment(tf.constant(x), *aug)), expected)
    # the gradient is the upstream gradient times the mask, sent back to the source pixels
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    grad = np.zeros((5, 256, channels), np.float32)
    flat_up = upstream.reshape(5, 256, channels) * aug[1][:, :, None]
    for n in range(5):
        np.add.at(grad[n], aug[0][n], flat_up[n])
    (out * torch.from_numpy(upstream.transpose(0, 3, 1, 2).copy())).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy().transpose(0, 2, 3, 1), grad.reshape(x.shape),
                               rtol=1e-6, atol=1e-6)
    xv = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xv)
        loss = tf.reduce_sum(tf_track.diff_augment(xv, *aug) * upstream)
    np.testing.assert_allclose(tape.gradient(loss, xv).numpy(), grad.reshape(x.shape),
                               rtol=1e-6, atol=1e-6)
