"""VAE and conditional VAE on MNIST (the report's part one), in two tracks.

`common` holds the framework-neutral part (config, the Trainer interface, the
training run with its figures and metrics); `tf_models` and `torch_models` hold
each framework's networks and losses (the parts the assignment grades), `tf_track`
and `torch_track` the trainers. Import a track only when you need it.
"""

from .common import VAEConfig, make_trainer

__all__ = ["VAEConfig", "make_trainer"]
