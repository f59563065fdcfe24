"""CycleGAN (Zhu et al. 2017, the report's part two), in two tracks.

`common` holds the framework-neutral part (config, loss weights, the
PatchGAN's receptive-field arithmetic, the reference parameter counts, the
history pool and the learning-rate schedule); `torch_models` and `tf_models`
hold the networks and losses of each framework, `torch_track` and `tf_track`
their training steps, `run` the `gencourse train cyclegan` run and `convert`
the weight copy between tracks.
The numpy oracles of the losses and of instance norm are in
gencourse.reference.cyclegan, the unpaired data in gencourse.data.domains.
Import a track only when you need it.
"""

from .common import (
    CycleGANConfig,
    ImagePool,
    conv_output_size,
    default_n_blocks,
    lr_factor,
    patch_map_size,
    receptive_field,
)

__all__ = ["CycleGANConfig", "ImagePool", "conv_output_size", "default_n_blocks", "lr_factor",
           "patch_map_size", "receptive_field"]
