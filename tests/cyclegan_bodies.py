"""Answers planted in copies of the CycleGAN solution notebooks: common mistakes, and correct answers in
another style. Each table maps a name to the body of a solution region, per track; `{i: body}` replaces
region i of a cell (regions count from 0 in the cell's order)."""

from __future__ import annotations

# ----------------------------------------------------------------------------- the ResNet generator
# torch regions: 0 ResnetBlock.__init__, 1 ResnetBlock.forward, 2 ResnetGenerator.__init__, 3 its forward;
# tf regions: 0 resnet_block, 1 build_resnet_generator.

_TORCH_GEN = """layers = [{pad}(3), nn.Conv2d(in_channels, ngf, 7), nn.InstanceNorm2d(ngf{affine}), nn.ReLU()]
for k in (2 * ngf, 4 * ngf):
    layers += [nn.Conv2d(k // 2, k, 3, stride=2, padding=1), nn.InstanceNorm2d(k{affine}), nn.ReLU()]
layers += [ResnetBlock(4 * ngf) for _ in range(n_blocks)]
for k in (2 * ngf, ngf):
    layers += [nn.ConvTranspose2d(2 * k, k, 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(k{affine}), nn.ReLU()]
layers += [{pad}(3), nn.Conv2d(ngf, out_channels, 7){tanh}]
self.model = nn.Sequential(*layers)
init_weights(self)"""
_TORCH_BLOCK = """self.body = nn.Sequential(
    {pad}(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels{affine}), nn.ReLU(),
    {pad}(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels{affine}))"""


def _torch_gen(pad="nn.ReflectionPad2d", affine="", tanh=", nn.Tanh()"):
    return {0: _TORCH_BLOCK.format(pad=pad, affine=affine), 2: _TORCH_GEN.format(pad=pad, affine=affine, tanh=tanh)}


_TF_BLOCK = """k = x.shape[-1]
h = layers.Conv2D(k, 3)({pad}(1)(x))
h = layers.ReLU()(InstanceNormalization({affine})(h))
h = layers.Conv2D(k, 3)({pad}(1)(h))
return {add}"""
_TF_GEN = """inputs = keras.Input((None, None, in_channels))
x = layers.Conv2D(ngf, 7)({pad}(3)(inputs))
x = layers.ReLU()(InstanceNormalization({affine})(x))
for k in (2 * ngf, 4 * ngf):
    x = layers.ReLU()(InstanceNormalization({affine})(layers.Conv2D(k, 3, strides=2)(layers.ZeroPadding2D(1)(x))))
for _ in range(n_blocks):
    x = resnet_block(x)
for k in (2 * ngf, ngf):
    x = layers.Cropping2D(((1, 0), (1, 0)))(layers.Conv2DTranspose(k, 3, strides=2)(x))
    x = layers.ReLU()(InstanceNormalization({affine})(x))
x = layers.Conv2D(out_channels, 7)({pad}(3)(x))
return keras.Model(inputs, {out})"""


def _tf_gen(pad="ReflectionPadding2D", affine="", tanh=True, residual=True):
    add = "layers.Add()([x, InstanceNormalization({})(h)])" if residual else "InstanceNormalization({})(h)"
    return {0: _TF_BLOCK.format(pad=pad, affine=affine, add=add.format(affine)),
            1: _TF_GEN.format(pad=pad, affine=affine, out='layers.Activation("tanh")(x)' if tanh else "x")}


GENERATOR = {
    "torch": {
        "zero_padding": _torch_gen(pad="nn.ZeroPad2d"),
        "affine": _torch_gen(affine=", affine=True"),
        "no_residual": {1: "return self.body(x)"},
        "no_tanh": _torch_gen(tanh=""),
        # another style: no Sequential, padding and norms as functions, declared in another order
        "other_style": {
            0: "self.second = nn.Conv2d(channels, channels, 3)\nself.first = nn.Conv2d(channels, channels, 3)",
            1: "pad = lambda t: nn.functional.pad(t, (1, 1, 1, 1), mode='reflect')\n"
               "h = torch.relu(nn.functional.instance_norm(self.first(pad(x))))\n"
               "return x + nn.functional.instance_norm(self.second(pad(h)))",
        },
    },
    "tf": {
        "zero_padding": _tf_gen(pad="layers.ZeroPadding2D"),
        "affine": _tf_gen(affine="affine=True"),
        "no_residual": _tf_gen(residual=False),
        "no_tanh": _tf_gen(tanh=False),
        # Keras' padding="same" at stride 2 (pads bottom and right only) for the explicit ZeroPadding2D(1)
        "same_padding": {1: _TF_GEN.format(pad="ReflectionPadding2D", affine="", out='layers.Activation("tanh")(x)')
                         .replace("layers.Conv2D(k, 3, strides=2)(layers.ZeroPadding2D(1)(x))",
                                  'layers.Conv2D(k, 3, strides=2, padding="same")(x)')},
        # another style: a subclassed Keras model, convolutions declared before they run
        "other_style": {1: """class Generator(keras.Model):
    def __init__(self):
        super().__init__()
        self.last = layers.Conv2D(out_channels, 7)
        self.first = layers.Conv2D(ngf, 7)
        self.downs = [layers.Conv2D(k, 3, strides=2) for k in (2 * ngf, 4 * ngf)]
        self.blocks = [(layers.Conv2D(4 * ngf, 3), layers.Conv2D(4 * ngf, 3)) for _ in range(n_blocks)]
        self.ups = [layers.Conv2DTranspose(k, 3, strides=2) for k in (2 * ngf, ngf)]

    def call(self, x):
        pad = lambda t, p: ops.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")
        norm = lambda t: (t - ops.mean(t, axis=(1, 2), keepdims=True)) / ops.sqrt(ops.var(t, axis=(1, 2), keepdims=True) + 1e-5)
        x = ops.relu(norm(self.first(pad(x, 3))))
        for conv in self.downs:
            x = ops.relu(norm(conv(ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]))))
        for c1, c2 in self.blocks:
            x = x + norm(c2(pad(ops.relu(norm(c1(pad(x, 1)))), 1)))
        for conv in self.ups:
            x = ops.relu(norm(conv(x)[:, 1:, 1:, :]))
        return ops.tanh(self.last(pad(x, 3)))
model = Generator()
model(np.zeros((1, 8, 8, in_channels), "float32"))
return model"""},
    },
}

# ----------------------------------------------------------------------------- the PatchGAN (region 0)

_TORCH_D = """blocks = [nn.Conv2d(in_channels, ndf, 4, 2, 1){first}, {act}]
width = ndf
for i in range(1, n_layers + 1):
    out = ndf * min(2 ** i, 8)
    blocks += [nn.Conv2d(width, out, 4, 1 if i == n_layers else 2, 1), nn.InstanceNorm2d(out), {act}]
    width = out
blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
self.layers = nn.Sequential(*blocks)
init_weights(self)"""
_TF_D = """inputs = keras.Input((None, None, in_channels))
x = layers.Conv2D(ndf, 4, 2)(layers.ZeroPadding2D(1)(inputs))
x = {act}({first}(x))
for i in range(1, n_layers + 1):
    x = layers.Conv2D(ndf * min(2 ** i, 8), 4, 1 if i == n_layers else 2)(layers.ZeroPadding2D(1)(x))
    x = {act}(InstanceNormalization()(x))
return keras.Model(inputs, layers.Conv2D(1, 4)(layers.ZeroPadding2D(1)(x)))"""

DISCRIMINATOR = {
    "torch": {
        "pooled": "self.layers = nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2),\n"
                  "                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ndf, 1))",
        "small_field": "blocks = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]\n"
                       "for i in range(1, n_layers + 1):\n"
                       "    blocks += [nn.Conv2d(ndf, ndf, 3, 1 if i == n_layers else 2, 1), nn.LeakyReLU(0.2)]\n"
                       "blocks.append(nn.Conv2d(ndf, 1, 3, 1, 1))\n"
                       "self.layers = nn.Sequential(*blocks)",
        "affine_sigmoid": "blocks = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]\n"
                          "width = ndf\n"
                          "for i in range(1, n_layers + 1):\n"
                          "    out = ndf * min(2 ** i, 8)\n"
                          "    blocks += [nn.Conv2d(width, out, 4, 1 if i == n_layers else 2, 1),\n"
                          "               nn.InstanceNorm2d(out, affine=True), nn.LeakyReLU(0.2)]\n"
                          "    width = out\n"
                          "blocks += [nn.Conv2d(width, 1, 4, 1, 1), nn.Sigmoid()]\n"
                          "self.layers = nn.Sequential(*blocks)",
        "relu": _TORCH_D.format(first="", act="nn.ReLU()"),
        "norm_on_c64": _TORCH_D.format(first=", nn.InstanceNorm2d(ndf)", act="nn.LeakyReLU(0.2)"),
        # another style: the normalization and the activations as functions in forward
        "other_style": {0: "self.convs = nn.ModuleList([nn.Conv2d(in_channels, ndf, 4, 2, 1)])\n"
                           "width = ndf\n"
                           "for i in range(1, n_layers + 1):\n"
                           "    out = ndf * min(2 ** i, 8)\n"
                           "    self.convs.append(nn.Conv2d(width, out, 4, 1 if i == n_layers else 2, 1))\n"
                           "    width = out\n"
                           "self.last = nn.Conv2d(width, 1, 4, 1, 1)\n"
                           "init_weights(self)",
                        1: "h = nn.functional.leaky_relu(self.convs[0](x), 0.2)\n"
                           "for conv in self.convs[1:]:\n"
                           "    h = nn.functional.leaky_relu(nn.functional.instance_norm(conv(h)), 0.2)\n"
                           "return self.last(h)"},
    },
    "tf": {
        "pooled": "inputs = keras.Input((None, None, in_channels))\n"
                  "x = layers.Conv2D(ndf, 4, strides=2, padding='same')(inputs)\n"
                  "x = layers.GlobalAveragePooling2D()(layers.LeakyReLU(0.2)(x))\n"
                  "return keras.Model(inputs, layers.Dense(1)(x))",
        "small_field": "inputs = keras.Input((None, None, in_channels))\n"
                       "x = layers.LeakyReLU(0.2)(layers.Conv2D(ndf, 4, 2)(layers.ZeroPadding2D(1)(inputs)))\n"
                       "for i in range(1, n_layers + 1):\n"
                       "    x = layers.Conv2D(ndf, 3, 1 if i == n_layers else 2, padding='same')(x)\n"
                       "    x = layers.LeakyReLU(0.2)(x)\n"
                       "return keras.Model(inputs, layers.Conv2D(1, 3, padding='same')(x))",
        "affine_sigmoid": "inputs = keras.Input((None, None, in_channels))\n"
                          "x = layers.LeakyReLU(0.2)(layers.Conv2D(ndf, 4, 2)(layers.ZeroPadding2D(1)(inputs)))\n"
                          "for i in range(1, n_layers + 1):\n"
                          "    x = layers.Conv2D(ndf * min(2 ** i, 8), 4, 1 if i == n_layers else 2)(layers.ZeroPadding2D(1)(x))\n"
                          "    x = layers.LeakyReLU(0.2)(InstanceNormalization(affine=True)(x))\n"
                          "x = layers.Conv2D(1, 4, activation='sigmoid')(layers.ZeroPadding2D(1)(x))\n"
                          "return keras.Model(inputs, x)",
        "relu": _TF_D.format(first="", act="layers.ReLU()"),
        "norm_on_c64": _TF_D.format(first="InstanceNormalization()", act="layers.LeakyReLU(0.2)"),
    },
}

# ----------------------------------------------------------------------------- the adversarial losses
# regions: 0 generator_adversarial_loss, 1 discriminator_loss

ADVERSARIAL = {
    "torch": {
        "sigmoid_twice": {0: "if gan_mode == 'lsgan':\n    return torch.mean((d_fake - 1.0) ** 2)\n"
                             "p = torch.sigmoid(d_fake)\n"
                             "return nn.functional.binary_cross_entropy_with_logits(p, torch.ones_like(p))"},
        "targets_swapped": {1: "if gan_mode == 'lsgan':\n    return 0.5 * (torch.mean(d_real ** 2) + torch.mean((d_fake - 1) ** 2))\n"
                               "bce = nn.functional.binary_cross_entropy_with_logits\n"
                               "return 0.5 * (bce(d_real, torch.zeros_like(d_real)) + bce(d_fake, torch.ones_like(d_fake)))"},
        "not_halved": {1: "if gan_mode == 'lsgan':\n    return torch.mean((d_real - 1) ** 2) + torch.mean(d_fake ** 2)\n"
                          "bce = nn.functional.binary_cross_entropy_with_logits\n"
                          "return bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))"},
        "saturating": {0: "if gan_mode == 'lsgan':\n    return torch.mean((d_fake - 1.0) ** 2)\n"
                          "return -nn.functional.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))"},
        "unstable": {0: "if gan_mode == 'lsgan':\n    return torch.mean((d_fake - 1.0) ** 2)\n"
                        "return -torch.mean(torch.log(torch.sigmoid(d_fake)))"},
        "args_swapped": {0: "if gan_mode == 'lsgan':\n    return torch.mean((d_fake - 1.0) ** 2)\n"
                            "return nn.functional.binary_cross_entropy_with_logits(torch.ones_like(d_fake), d_fake)"},
        "other_style": {0: "target = torch.ones_like(d_fake)\n"
                           "loss = nn.MSELoss() if gan_mode == 'lsgan' else nn.BCEWithLogitsLoss()\n"
                           "return loss(d_fake, target)",
                        1: "loss = nn.MSELoss() if gan_mode == 'lsgan' else nn.BCEWithLogitsLoss()\n"
                           "return (loss(d_real, torch.ones_like(d_real)) + loss(d_fake, torch.zeros_like(d_fake))) / 2"},
    },
    "tf": {
        # (Keras recovers the logits of ops.sigmoid's output and computes the right loss: a sigmoid by hand)
        "sigmoid_twice": {0: "if gan_mode == 'lsgan':\n    return ops.mean(ops.square(d_fake - 1.0))\n"
                             "p = 1 / (1 + ops.exp(-d_fake))\n"
                             "return ops.mean(ops.binary_crossentropy(ops.ones_like(p), p, from_logits=True))"},
        "targets_swapped": {1: "if gan_mode == 'lsgan':\n    return 0.5 * (ops.mean(ops.square(d_real)) + ops.mean(ops.square(d_fake - 1)))\n"
                               "bce = lambda t, z: ops.mean(ops.binary_crossentropy(t, z, from_logits=True))\n"
                               "return 0.5 * (bce(ops.zeros_like(d_real), d_real) + bce(ops.ones_like(d_fake), d_fake))"},
        "not_halved": {1: "if gan_mode == 'lsgan':\n    return ops.mean(ops.square(d_real - 1)) + ops.mean(ops.square(d_fake))\n"
                          "bce = lambda t, z: ops.mean(ops.binary_crossentropy(t, z, from_logits=True))\n"
                          "return bce(ops.ones_like(d_real), d_real) + bce(ops.zeros_like(d_fake), d_fake)"},
        "saturating": {0: "if gan_mode == 'lsgan':\n    return ops.mean(ops.square(d_fake - 1.0))\n"
                          "return -ops.mean(ops.binary_crossentropy(ops.zeros_like(d_fake), d_fake, from_logits=True))"},
        "unstable": {0: "if gan_mode == 'lsgan':\n    return ops.mean(ops.square(d_fake - 1.0))\n"
                        "return -ops.mean(ops.log(ops.sigmoid(d_fake)))"},
        "args_swapped": {0: "if gan_mode == 'lsgan':\n    return ops.mean(ops.square(d_fake - 1.0))\n"
                            "return ops.mean(ops.binary_crossentropy(d_fake, ops.ones_like(d_fake), from_logits=True))"},
        "other_style": {0: "loss = keras.losses.MeanSquaredError() if gan_mode == 'lsgan' else "
                           "keras.losses.BinaryCrossentropy(from_logits=True)\n"
                           "return loss(ops.ones_like(d_fake), d_fake)",
                        1: "loss = keras.losses.MeanSquaredError() if gan_mode == 'lsgan' else "
                           "keras.losses.BinaryCrossentropy(from_logits=True)\n"
                           "return (loss(ops.ones_like(d_real), d_real) + loss(ops.zeros_like(d_fake), d_fake)) / 2"},
    },
}

# ----------------------------------------------------------------------------- the semantic loss

SEMANTIC = {
    "torch": {
        "softmax_twice": "return weight * nn.functional.cross_entropy(torch.softmax(logits, dim=1), labels)",
        "no_weight": "return nn.functional.cross_entropy(logits, labels)",
        "nll_on_logits": "return weight * nn.functional.nll_loss(logits, labels)",
        "unstable": "p = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)\n"
                    "return -weight * torch.log(p[torch.arange(len(labels)), labels]).mean()",
        "other_style": "return weight * nn.functional.nll_loss(torch.log_softmax(logits, dim=-1), labels.long())",
    },
    "tf": {
        "softmax_twice": "p = ops.exp(logits - ops.max(logits, axis=1, keepdims=True))\n"
                         "p = p / ops.sum(p, axis=1, keepdims=True)\n"
                         "return weight * ops.mean(ops.sparse_categorical_crossentropy(labels, p, from_logits=True))",
        "no_weight": "return ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))",
        "nll_on_logits": "picked = ops.take_along_axis(logits, ops.expand_dims(ops.cast(labels, 'int32'), 1), axis=1)\n"
                         "return -weight * ops.mean(picked)",
        "unstable": "p = ops.exp(logits) / ops.sum(ops.exp(logits), axis=1, keepdims=True)\n"
                    "picked = ops.take_along_axis(p, ops.expand_dims(ops.cast(labels, 'int32'), 1), axis=1)\n"
                    "return -weight * ops.mean(ops.log(picked))",
        "other_style": "return weight * keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)",
    },
}

# ----------------------------------------------------------------------------- the training step
# regions: 0 generator_step, 1 discriminator_step, 2 training_step

_TORCH_G = """{freeze}fake_b, fake_a = G(real_a), F(real_b)
rec_a, rec_b = F(fake_b), G(fake_a)
losses = {{"G_adv": generator_adversarial_loss({d_b}(fake_b), gan_mode),
          "F_adv": generator_adversarial_loss({d_a}(fake_a), gan_mode),
          "cycle": cycle_consistency_loss(real_a, rec_a, real_b, rec_b, lambda_cycle)}}
if lambda_identity and {identity}:
    losses["identity_A"] = identity_loss(real_a, F(real_a), lambda_identity)
    losses["identity_B"] = identity_loss(real_b, G(real_b), lambda_identity)
if semantic is not None:
    c_a, c_b, labels_a, labels_b, weight = semantic
    losses["semantic_A"] = semantic_consistency_loss(c_b(fake_b), labels_a, weight)
    losses["semantic_B"] = semantic_consistency_loss(c_a(fake_a), labels_b, weight)
{zero}sum(losses.values()).backward()
opt_g.step()
{unfreeze}return fake_a, fake_b, losses"""
_FREEZE, _UNFREEZE = "for d in (D_A, D_B):\n    d.requires_grad_(False)\n", "for d in (D_A, D_B):\n    d.requires_grad_(True)\n"


def _torch_g(freeze=True, d_b="D_B", d_a="D_A", identity="True", zero=True):
    return _TORCH_G.format(freeze=_FREEZE if freeze else "", unfreeze=_UNFREEZE if freeze else "", d_b=d_b, d_a=d_a,
                           identity=identity, zero="opt_g.zero_grad()\n" if zero else "")


_TORCH_D_STEP = """losses = {{"D_A": discriminator_loss(D_A(real_a), D_A(old_a{detach}), gan_mode),
          "D_B": discriminator_loss(D_B(real_b), D_B(old_b{detach}), gan_mode)}}
{zero}(losses["D_A"] + losses["D_B"]).backward()
opt_d.step()
return losses"""
_STEP = """fake_a, fake_b, losses = generator_step(G, F, D_A, D_B, opt_g, real_a, real_b, lambda_cycle, lambda_identity,
                                        gan_mode, semantic)
{late}losses.update(discriminator_step(D_A, D_B, opt_d, real_a, real_b, {old_a}, {old_b}, gan_mode))
return {{k: float({value}) for k, v in losses.items()}}"""


def _step(old_a="pool_a.query(fake_a)", old_b="pool_b.query(fake_b)", late="", value="v.detach()"):
    return _STEP.format(old_a=old_a, old_b=old_b, late=late, value=value)


_TF_G = """with tf.GradientTape() as tape:
    fake_b, fake_a = G(real_a, training=True), F(real_b, training=True)
    rec_a, rec_b = F(fake_b, training=True), G(fake_a, training=True)
    losses = {{"G_adv": generator_adversarial_loss({d_b}(fake_b, training=True), gan_mode),
              "F_adv": generator_adversarial_loss({d_a}(fake_a, training=True), gan_mode),
              "cycle": cycle_consistency_loss(real_a, rec_a, real_b, rec_b, lambda_cycle)}}
    if lambda_identity and {identity}:
        losses["identity_A"] = identity_loss(real_a, F(real_a, training=True), lambda_identity)
        losses["identity_B"] = identity_loss(real_b, G(real_b, training=True), lambda_identity)
    if semantic is not None:
        c_a, c_b, labels_a, labels_b, weight = semantic
        losses["semantic_A"] = semantic_consistency_loss(c_b(fake_b), labels_a, weight)
        losses["semantic_B"] = semantic_consistency_loss(c_a(fake_a), labels_b, weight)
    total = ops.sum(ops.stack(list(losses.values())))
variables = G.trainable_variables + F.trainable_variables
opt_g.apply_gradients(zip(tape.gradient(total, variables), variables))
return fake_a, fake_b, losses"""

STEP = {
    "torch": {
        "no_detach": {1: _TORCH_D_STEP.format(detach="", zero="opt_d.zero_grad()\n")},
        "no_pool": {2: _step("fake_a", "fake_b")},
        "not_frozen": {0: _torch_g(freeze=False), 1: _TORCH_D_STEP.format(detach=".detach()", zero="")},
        "no_identity": {0: _torch_g(identity="False")},
        "swapped_d": {0: _torch_g(d_b="D_A", d_a="D_B")},
        "accumulates": {0: _torch_g(zero=False)},
        "other_style": {
            0: _torch_g().replace("opt_g.zero_grad()", "opt_g.zero_grad(set_to_none=False)")
                         .replace("sum(losses.values()).backward()",
                                  "total = losses['cycle']\nfor k in ('G_adv', 'F_adv', 'identity_A', 'identity_B', "
                                  "'semantic_A', 'semantic_B'):\n    total = total + losses.get(k, 0.0)\ntotal.backward()"),
            1: "opt_d.zero_grad()\nlosses = {}\nfor name, d, real, old in (('D_B', D_B, real_b, old_b), ('D_A', D_A, real_a, old_a)):\n"
               "    losses[name] = discriminator_loss(d(real), d(old.detach()), gan_mode)\n"
               "    losses[name].backward()\nopt_d.step()\nreturn losses",
            2: _step(value="v.item()"),
        },
    },
    "tf": {
        "no_pool": {2: _step("fake_a", "fake_b", value="v")},
        "late_pool": {2: _step(late="fake_b, fake_a = G(real_a), F(real_b)\n", value="v")},
        "no_identity": {0: _TF_G.format(d_b="D_B", d_a="D_A", identity="False")},
        "swapped_d": {0: _TF_G.format(d_b="D_A", d_a="D_B", identity="True")},
        "other_style": {
            1: "with tf.GradientTape(persistent=True) as tape:\n"
               "    losses = {'D_A': discriminator_loss(D_A(real_a), D_A(old_a), gan_mode),\n"
               "              'D_B': discriminator_loss(D_B(real_b), D_B(old_b), gan_mode)}\n"
               "for name, d in (('D_A', D_A), ('D_B', D_B)):\n"
               "    opt_d.apply_gradients(zip(tape.gradient(losses[name], d.trainable_variables), d.trainable_variables))\n"
               "return losses",
            2: _step(value="v.numpy()"),
        },
    },
}
