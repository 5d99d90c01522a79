#!/usr/bin/python3
"""PyTorch's numbers for Kiln's module API, initialisers, losses, optimizers and the small ResNet.

Run from the repository root with an interpreter that has torch:  /usr/bin/python3 tools/pytorch_goldens_models.py

Writes core/src/test/resources/goldens/pytorch-models.json (committed; CI has no PyTorch), read by
dev.kiln.suites.ModelsGoldensSuite:
  init            torch.nn.init.* after torch.manual_seed(seed), on shapes under and over 16 elements (PyTorch's two
                  normal_ paths): every value for small tensors, the SHA-256 of the float32 bits for large ones
  cross_entropy   F.cross_entropy with integer targets, label_smoothing 0, 0.1 and 1: loss and input gradient
  sgd_groups, adam_groups   optimizers with two parameter groups (own lr / momentum / weight decay / betas), steps
                  from given gradients
  resnet          the ResNet of tools/kiln_torch_models.py: the initial weights' SHA-256 after torch.manual_seed(0),
                  and one training step (SGD lr 0.1, momentum 0.9, weight decay 5e-4 on convolution and linear weights
                  only) from pattern weights on a pattern batch: loss, every gradient, every parameter and buffer after
                  the step
and core/src/test/resources/goldens/resnet-pytorch.safetensors: the ResNet after torch.manual_seed(3) and three
  SGD steps on random batches (so the running statistics have moved), as PyTorch writes a state dict, with no Kiln
  metadata; "resnet_file" in the JSON holds its eval logits on a pattern batch.
Inputs are pattern(n, seed) of tools/goldens_common.py, which the Java side reimplements.
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from goldens_common import CORE, dump, sha256, summary, t, tensor, write_safetensors
from kiln_torch_models import ResNet


def init_cases():
    cases = []

    def case(name, seed, shape, fn):
        torch.manual_seed(seed)
        w = torch.empty(shape)
        with torch.no_grad():
            fn(w)
        after = t(torch.rand(3))  # where the stream is afterwards
        entry = {"name": name, "seed": seed, "shape": list(shape), "rand_3_after": after}
        if w.numel() <= 64:
            entry["values"] = t(w)
        else:
            entry["sha256"] = sha256(w)
            entry["head"] = t(w.reshape(-1)[:8])
        cases.append(entry)

    init = nn.init
    for shape in ((3, 4), (16, 8, 3, 3), (10, 64)):
        s = "x".join(map(str, shape))
        case("kaiming_normal_" + s, 0, shape, lambda w: init.kaiming_normal_(w))
        case("kaiming_normal_fan_out_relu_" + s, 1, shape, lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"))
        case("kaiming_uniform_" + s, 2, shape, lambda w: init.kaiming_uniform_(w))
        case("kaiming_uniform_a_sqrt5_" + s, 3, shape, lambda w: init.kaiming_uniform_(w, a=math.sqrt(5)))
        case("xavier_uniform_" + s, 4, shape, lambda w: init.xavier_uniform_(w))
        case("xavier_uniform_gain_tanh_" + s, 5, shape, lambda w: init.xavier_uniform_(w, gain=init.calculate_gain("tanh")))
        case("xavier_normal_" + s, 6, shape, lambda w: init.xavier_normal_(w))
        case("normal_0.3_0.02_" + s, 7, shape, lambda w: init.normal_(w, 0.3, 0.02))
        case("uniform_-0.5_2_" + s, 8, shape, lambda w: init.uniform_(w, -0.5, 2.0))
        case("constant_0.25_" + s, 9, shape, lambda w: init.constant_(w, 0.25))
        case("zeros_" + s, 9, shape, lambda w: init.zeros_(w))
        case("ones_" + s, 9, shape, lambda w: init.ones_(w))
    gains = {k: init.calculate_gain(k) for k in ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")}
    gains["leaky_relu_0.2"] = init.calculate_gain("leaky_relu", 0.2)
    return {"cases": cases, "gains": gains}


def cross_entropy_cases():
    out = []
    for smoothing in (0.0, 0.1, 1.0):
        logits = tensor((8, 10), 81, 4.0).requires_grad_(True)
        labels = torch.tensor([(7 * i + 3) % 10 for i in range(8)])
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        loss.backward()
        out.append({"label_smoothing": smoothing, "labels": labels.tolist(), "loss": float(loss),
                    "grad": t(logits.grad)})
    return out


def optimizer_group_cases():
    def run(make):
        a = torch.nn.Parameter(tensor((5,), 300))
        b = torch.nn.Parameter(tensor((3, 2), 301))
        opt = make(a, b)
        for step in range(3):
            a.grad = tensor((5,), 310 + step)
            b.grad = tensor((3, 2), 320 + step)
            opt.step()
        return {"a": t(a), "b": t(b)}

    sgd = run(lambda a, b: optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.05, "momentum": 0.5, "weight_decay": 0.0}],
                                     lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=False))
    sgd_nesterov = run(lambda a, b: optim.SGD([{"params": [a], "weight_decay": 0.0, "nesterov": True},
                                               {"params": [b], "momentum": 0.0}], lr=0.2, momentum=0.8, weight_decay=0.001))
    adam = run(lambda a, b: optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}],
                                       lr=0.001))
    adamw = run(lambda a, b: optim.AdamW([{"params": [a], "weight_decay": 0.0}, {"params": [b], "eps": 1e-6}], lr=0.01))
    return {"sgd": sgd, "sgd_nesterov": sgd_nesterov, "adam": adam, "adamw": adamw}


def decay_groups(net):
    """Convolution and linear weights decay; batch-norm parameters and biases do not."""
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def resnet_cases():
    init = {}
    for seed in (0, 7):
        torch.manual_seed(seed)
        net = ResNet()
        init[str(seed)] = {k: sha256(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    params = sum(p.numel() for p in ResNet().parameters())
    bns = sum(1 for m in ResNet().modules() if isinstance(m, nn.BatchNorm2d))

    net = ResNet()
    with torch.no_grad():
        for i, (name, p) in enumerate(net.named_parameters()):
            if ".bn" in name or name.startswith("bn") or "shortcut.1" in name:
                continue
            bound = 1 / math.sqrt(math.prod(p.shape[1:])) if p.dim() > 1 else 0.1
            p.copy_(tensor(tuple(p.shape), 400 + i, bound))
    images = tensor((8, 1, 28, 28), 500)
    labels = torch.tensor([(3 * i + 2) % 10 for i in range(8)])
    opt = optim.SGD(decay_groups(net), lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt.zero_grad()
    loss = F.cross_entropy(net(images), labels)
    loss.backward()
    grads = {k: summary(p.grad) for k, p in net.named_parameters()}
    opt.step()
    after = {k: summary(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    net.eval()
    with torch.no_grad():
        eval_logits = t(net(images))
    return {"init_sha256": init, "parameters": params, "batch_norms": bns, "batch": 8, "labels": labels.tolist(),
            "loss": float(loss), "grads": grads, "state_after_step": after, "eval_logits_after_step": eval_logits}


def resnet_file(path):
    torch.manual_seed(3)
    net = ResNet()
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        images = torch.randn(16, 1, 28, 28)
        labels = torch.randint(0, 10, (16,))
        opt.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        opt.step()
    write_safetensors(path, net.state_dict(), {"format": "pt"})  # only what safetensors' save_file writes
    net.eval()
    with torch.no_grad():
        logits = net(tensor((4, 1, 28, 28), 520))
    return {"file": "goldens/resnet-pytorch.safetensors", "input_seed": 520, "batch": 4, "eval_logits": t(logits)}


def main():
    os.makedirs(CORE, exist_ok=True)
    dump(os.path.join(CORE, "pytorch-models.json"), {
        "torch_version": torch.__version__, "init": init_cases(), "cross_entropy": cross_entropy_cases(),
        "optimizer_groups": optimizer_group_cases(), "resnet": resnet_cases(),
        "resnet_file": resnet_file(os.path.join(CORE, "resnet-pytorch.safetensors"))})


if __name__ == "__main__":
    main()
