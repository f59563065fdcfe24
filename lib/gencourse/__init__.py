"""gencourse: a course package for deep generative models (VAE, CycleGAN, StyleGAN).

Complete solutions live here, topic first and framework second; the student
notebooks are generated from `solutions/`, and `gencourse.grading` grades them.
"""

__version__ = "0.1.0"
