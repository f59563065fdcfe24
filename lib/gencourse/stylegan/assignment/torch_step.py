"""The training-step check's networks and trusted step in PyTorch (the probe builds the networks, the judge steps).

`make_nets` builds the package's G, D and a Gs of other weights at the check's small size, seeded; `tensors`
lists a network's trainable weights in the order they travel, `names` their names. `draw` turns one phase's
numpy draws into what the student's step receives. `trusted_steps` runs the package's step (torch_track's, with
plain gradient descent) or one of its known wrong variants (step_checks.Variant) from given weights.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import torch_models as tm
from .step_checks import GS_OFFSET, PERTURB, held


class TrustedGenerator(tm.Generator):
    """The package's network, called from this module: what it runs of the package counts as the probe's, not
    as the student's step that calls it (grading.guard walks out to the nearest trusted frame)."""

    def forward(self, *args, **kwargs):
        return super().forward(*args, **kwargs)


class TrustedDiscriminator(tm.Discriminator):
    def forward(self, *args, **kwargs):
        return super().forward(*args, **kwargs)


def make_nets(cfg: dict, seed: int) -> dict:
    torch.manual_seed(seed)
    g_args = dict(resolution=cfg["resolution"], z_dim=cfg["z_dim"], w_dim=cfg["z_dim"],
                  mapping_layers=cfg["mapping_layers"], fmap_base=cfg["fmap_base"], fmap_max=cfg["fmap_max"])
    nets = {"G": TrustedGenerator(**g_args),
            "D": TrustedDiscriminator(cfg["resolution"], fmap_base=cfg["fmap_base"], fmap_max=cfg["fmap_max"])}
    nets["Gs"] = TrustedGenerator(**g_args).requires_grad_(False)
    with torch.no_grad():       # off the initial point, where the 4x4 constant's AdaIN divides by sqrt(eps)
        for p, e in zip(nets["G"].parameters(), nets["Gs"].parameters()):
            p.add_(PERTURB * torch.randn_like(p))
            e.copy_(p + GS_OFFSET * p.pow(2).mean().sqrt() * torch.randn_like(p))
    return nets


def tensors(net) -> list:
    return list(net.parameters())


def names(net) -> list[str]:
    return [n for n, _ in net.named_parameters()]


def images(x) -> torch.Tensor:
    """NHWC numpy -> NCHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2)))


def draw(inputs: dict, phase: str, it: int) -> tuple:
    """(z1, z2, crossover, noise) of one phase ("d" or "g") of iteration `it`, as the student's step gets them."""
    key = f"{phase}{it}"
    z = lambda k: torch.from_numpy(np.asarray(inputs[f"{k}_{key}"], np.float32))  # noqa: E731
    count = int(np.asarray(inputs["n_noise"]).reshape(()))
    noise = [images(inputs[f"noise{i}_{key}"]) for i in range(count)]
    return z("z1"), z("z2"), int(np.asarray(inputs[f"crossover_{key}"]).reshape(())), noise


def trusted_steps(nets: dict, inputs: dict, v, lr: float, steps=(1, 2)) -> list[dict]:
    """{net: [weights as numpy]} after each step of the variant `v` from the nets' present weights."""
    G, D, Gs = nets["G"], nets["D"], nets["Gs"]
    gp, dp = tensors(G), tensors(D)
    k, gamma, beta = (float(np.asarray(inputs[n]).reshape(())) for n in ("r1_every", "gamma", "ema_beta"))
    store = {"G": [torch.zeros_like(p) for p in gp], "D": [torch.zeros_like(p) for p in dp]}
    out = []
    for it in steps:
        reals = images(inputs[f"reals{it}"])
        z1, z2, crossover, noise = draw(inputs, "d", it)
        with torch.no_grad():
            fake = G(z1, z2 if v.mix_d else None, crossover=crossover, noise=noise)
        loss = tm.discriminator_loss(D(reals), D(fake))
        if v.applies_r1(it, int(k)):
            loss = loss + tm.r1_penalty(D, reals, gamma * (k if v.r1_times_k else 1.0))
        grads = torch.autograd.grad(loss, dp)
        grads = held(store, "D", grads, v.d_keeps_grads)
        with torch.no_grad():
            for p, g in zip(dp, grads):
                p.sub_(lr * g)
        z1, z2, crossover, noise = draw(inputs, "g", it)
        g_loss = tm.generator_loss(D(G(z1, z2 if v.mix_g else None, crossover=crossover, noise=noise)))
        both = torch.autograd.grad(g_loss, gp + dp)
        g_grads, d_grads = both[:len(gp)], both[len(gp):]
        g_grads = held(store, "G", g_grads, v.g_keeps_grads)
        with torch.no_grad():
            if v.ema == "before":
                _ema(Gs, G, beta)
            for p, g in zip(gp, g_grads):
                p.sub_(lr * g)
            if v.g_moves_d:
                for p, g in zip(dp, d_grads):
                    p.sub_(lr * g)
            if v.d_keeps_grads and v.g_grads_in_d:
                held(store, "D", d_grads, True)
            if v.ema_weight(beta) is not None:
                _ema(Gs, G, v.ema_weight(beta))
        out.append({name: [p.detach().numpy().copy() for p in tensors(net)] for name, net in nets.items()})
    return out


def _ema(gs, g, beta: float) -> None:
    for e, p in zip(tensors(gs), tensors(g)):
        e.copy_(beta * e + (1.0 - beta) * p)


def short_generator(size: dict) -> TrustedGenerator:
    """The package's generator at the short training's size (training_checks.SHORT)."""
    return TrustedGenerator(resolution=size["resolution"], z_dim=size["z_dim"], w_dim=size["z_dim"],
                            mapping_layers=size["mapping_layers"], fmap_base=size["fmap_base"],
                            fmap_max=size["fmap_max"])


def short_nets(size: dict, seed: int) -> dict:
    """G, Gs and D of the short training, seeded (student_run.train starts Gs as a copy of G)."""
    torch.manual_seed(seed)
    return {"G": short_generator(size), "Gs": short_generator(size),
            "D": TrustedDiscriminator(size["resolution"], fmap_base=size["fmap_base"], fmap_max=size["fmap_max"])}


def sample(net, z: np.ndarray, noise: list) -> np.ndarray:
    """[n, r, r] images of `net` for latents z and NHWC noise images, no mixing, no truncation."""
    with torch.no_grad():
        return net(torch.from_numpy(z), noise=[images(n) for n in noise]).numpy()[:, 0]
