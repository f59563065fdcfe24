"""Messages that name something: the entries that differ and by how much, framework errors in the student's terms,
and known mistakes whose values identify them."""

from __future__ import annotations

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
])
def test_framework_errors_are_told_in_what_the_code_did(raw, named):
    text = failure(Reply(error=raw))
    assert named in text and "grad_fn" not in text and "convert a value" not in text
    assert text.endswith("(cell 'kl', line 3)") or "cell" not in raw


def test_sampling_with_the_sign_of_the_log_variance_flipped_is_named():
    case = vc.sampling_case(11, 4000, [-1.2, 0.7])
    mu, lv = case.inputs["z_mean"].astype(np.float64), case.inputs["z_log_var"].astype(np.float64)
    rng = np.random.default_rng(0)
    z, z_again = (mu + np.exp(-0.5 * lv) * rng.standard_normal(mu.shape) for _ in range(2))
    replies = {"k": Reply(arrays={"z": z, "z_again": z_again})}
    with pytest.raises(Mistake, match=r"exp\(-0.5 \* z_log_var\).*sign is flipped"):
        vc.judge_sampling_stats(case.inputs, replies, "k")
