"""StyleGAN (Karras, Laine & Aila 2019, the report's part three), in two tracks.

`common` holds the framework-neutral part (config, layer arithmetic, the numpy
masks and coefficients of style mixing and truncation, the crossover and noise
samplers shared by both tracks); `torch_models` and `tf_models` hold the
networks and losses of each framework. The numpy oracles (pixel norm, AdaIN,
mixing, truncation, the w average, minibatch stddev, the losses and R1) are in
gencourse.reference.stylegan; the Fréchet distance in gencourse.metrics.frechet.
Import a track only when you need it.
"""

from .common import (
    StyleGANConfig,
    feature_maps,
    layer_resolution,
    noise_shapes,
    num_layers,
    resolutions,
    sample_crossover,
    sample_noise,
)

__all__ = ["StyleGANConfig", "feature_maps", "layer_resolution", "noise_shapes", "num_layers",
           "resolutions", "sample_crossover", "sample_noise"]
