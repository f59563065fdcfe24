"""The training-step check's networks and loss terms in PyTorch (the probe builds the networks, the judge the terms).

`make_nets` builds the package's four networks of a small configuration, seeded; `tensors` lists a
network's weights in the order they travel. `gen_terms` and `disc_terms` give the gradient of every term
of the generators' and the discriminators' losses, and of the known wrong terms, as one flat vector each
(w.r.t. G and F's weights, then D_A and D_B's), so that the judge can tell which mix of terms a
student's step followed (step_checks.py). Images cross as numpy NHWC.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import torch_models as tm


def make_nets(cfg: dict, seed: int) -> dict:
    torch.manual_seed(seed)
    c = cfg["channels"]
    return {"G": tm.ResnetGenerator(c, c, cfg["ngf"], cfg["n_blocks"]),
            "F": tm.ResnetGenerator(c, c, cfg["ngf"], cfg["n_blocks"]),
            "D_A": tm.PatchDiscriminator(c, cfg["ndf"], cfg["n_layers"]),
            "D_B": tm.PatchDiscriminator(c, cfg["ndf"], cfg["n_layers"])}


def tensors(net) -> list:
    return list(net.parameters())


def images(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2)))


def linear_classifier(weight, bias):
    """A frozen linear classifier on flattened one-channel images (the check's stand-in for a CNN)."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(weight.shape[0], weight.shape[1]))
    with torch.no_grad():
        net[1].weight.copy_(torch.from_numpy(np.asarray(weight, np.float32).T.copy()))
        net[1].bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))
    return net.requires_grad_(False)


def labels(y) -> torch.Tensor:
    return torch.from_numpy(np.asarray(y, np.int64))


def translate(net, x, batch: int = 100) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([net(images(x[i:i + batch])).permute(0, 2, 3, 1).numpy()
                               for i in range(0, len(x), batch)])


def fakes(nets, a, b) -> tuple[np.ndarray, np.ndarray]:
    return translate(nets["F"], b), translate(nets["G"], a)


def _grads(losses: dict, params) -> dict:
    out = {}
    for name, loss in losses.items():
        grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
        out[name] = np.concatenate([np.zeros(p.numel()) if g is None else g.detach().double().numpy().ravel()
                                    for g, p in zip(grads, params)])
    return out


def gen_terms(nets, a, b, cfg: dict, semantic=None) -> dict:
    """{term: gradient w.r.t. G's then F's weights}, from one forward pass; semantic: (C_A, C_B, labels_a,
    labels_b, weight) or None."""
    G, F, D_A, D_B = (nets[k] for k in ("G", "F", "D_A", "D_B"))
    params = tensors(G) + tensors(F)
    real_a, real_b = images(a), images(b)
    lam, lam_id, mode = cfg["lambda_cycle"], cfg["lambda_identity"], cfg["gan_mode"]
    adv, l1 = tm.generator_adversarial_loss, lambda x, y: (x - y).abs().mean()  # noqa: E731
    fake_b, fake_a = G(real_a), F(real_b)
    losses = {
        "G_adv": adv(D_B(fake_b), mode), "F_adv": adv(D_A(fake_a), mode),
        "cycle_A": lam * l1(F(fake_b), real_a), "cycle_B": lam * l1(G(fake_a), real_b),
        "identity_A": lam_id * l1(F(real_a), real_a), "identity_B": lam_id * l1(G(real_b), real_b),
        "G_adv_by_D_A": adv(D_A(fake_b), mode), "F_adv_by_D_B": adv(D_B(fake_a), mode),
        "identity_A_by_G": lam_id * l1(fake_b, real_a), "identity_B_by_F": lam_id * l1(fake_a, real_b),
    }
    if semantic is not None:
        c_a, c_b, y_a, y_b, weight = semantic
        losses["semantic_A"] = tm.semantic_consistency_loss(c_b(fake_b), labels(y_a), weight)
        losses["semantic_B"] = tm.semantic_consistency_loss(c_a(fake_a), labels(y_b), weight)
    return _grads(losses, params)


def disc_terms(nets, a, b, old_a, old_b, fake_a, fake_b, cfg: dict) -> dict:
    """{term: gradient w.r.t. D_A's then D_B's weights}: the halved real and fake terms on the pool's images
    (old_*), on this step's fakes without the pool (fake_*), on the other domain's pool, and the
    generators' adversarial terms (discriminators not frozen)."""
    D_A, D_B = nets["D_A"], nets["D_B"]
    params = tensors(D_A) + tensors(D_B)
    mode = cfg["gan_mode"]
    half = lambda d, x, target: 0.5 * tm._adversarial(d(images(x)), target, mode)  # noqa: E731
    return _grads({
        "D_A_real": half(D_A, a, 1.0), "D_A_fake": half(D_A, old_a, 0.0),
        "D_B_real": half(D_B, b, 1.0), "D_B_fake": half(D_B, old_b, 0.0),
        "D_A_fake_now": half(D_A, fake_a, 0.0), "D_B_fake_now": half(D_B, fake_b, 0.0),
        "D_A_on_fake_b": half(D_A, old_b, 0.0), "D_B_on_fake_a": half(D_B, old_a, 0.0),
        "D_A_from_F": tm.generator_adversarial_loss(D_A(images(fake_a)), mode),
        "D_B_from_G": tm.generator_adversarial_loss(D_B(images(fake_b)), mode),
    }, params)
