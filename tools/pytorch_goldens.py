#!/usr/bin/env python3
"""PyTorch goldens for Kiln's conformance checks (run where torch is installed, e.g. the GPU machine).

Writes core/src/test/resources/goldens/pytorch-goldens.json with PyTorch's float32 CPU results for
  * batch norm in every mode (BatchNorm1d (N,C) and (N,C,L), BatchNorm2d; affine on/off; track on/off;
    momentum 0.1 or None): running statistics after each of 3 training steps, the last step's output and
    input gradient (and weight/bias gradients), and an eval-mode forward/backward;
  * conv2d forward and backward for four geometries (LeNet's among them);
  * one LeNet-BN training step (SGD lr 0.1 momentum 0.9): the loss, and for every gradient and every updated
    parameter/buffer its sum, sum of squares and first 8 values.
Inputs and initial weights are not stored: both sides compute them from pattern(n, seed) below, which
dev.kiln.suites.PyTorchGoldensSuite reimplements, so the file stays small (about 200 KB).

Usage: python3 tools/pytorch_goldens.py [OUT.json]
"""
import json
import math
import sys

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from pytorch_lenet import LeNet5  # noqa: E402  (the same layers and names as dev.kiln.models.LeNet5)

OUT = sys.argv[1] if len(sys.argv) > 1 else "core/src/test/resources/goldens/pytorch-goldens.json"
torch.use_deterministic_algorithms(True)


def pattern(n, seed, scale=1.0, offset=0.0):
    """Deterministic pseudo-random values, computed in float64 then rounded to float32 (same as the Java side)."""
    return torch.tensor([offset + scale * math.sin(seed * 1.7 + i * 0.7311) * math.cos(i * 0.0173 + seed)
                         for i in range(n)], dtype=torch.float64).to(torch.float32)


def tensor(shape, seed, scale=1.0, offset=0.0):
    return pattern(math.prod(shape), seed, scale, offset).reshape(shape)


def t(x):
    x = x.detach().to(torch.float32).cpu().contiguous().reshape(-1)
    return [float("%.9g" % v) for v in x.tolist()]


def summary(x):
    x = x.detach().to(torch.float64).cpu().reshape(-1)
    return {"sum": float(x.sum()), "sumsq": float((x * x).sum()), "head": t(x[:8])}


batch_norm = {}
for kind, shape in (("BatchNorm1d", (6, 4)), ("BatchNorm1d", (5, 3, 4)), ("BatchNorm2d", (4, 3, 3, 4))):
    for affine in (True, False):
        for track in (True, False):
            for momentum in (0.1, None):
                if not track and momentum is None:
                    continue
                c = shape[1]
                bn = getattr(nn, kind)(c, eps=1e-5, momentum=momentum, affine=affine, track_running_stats=track)
                if affine:
                    with torch.no_grad():
                        bn.weight.copy_(tensor((c,), 11, 1.0, 1.0))
                        bn.bias.copy_(tensor((c,), 12, 0.5))
                name = "%s_%s_affine%d_track%d_momentum%s" % (kind, "x".join(map(str, shape)), affine, track, momentum)
                case = {"kind": kind, "shape": list(shape), "affine": affine, "track": track, "momentum": momentum,
                        "running": []}
                bn.train()
                for k in range(3):
                    x = tensor(shape, 20 + k, 1.0 + k, float(k)).requires_grad_(True)
                    g = tensor(shape, 30 + k)
                    y = bn(x)
                    y.backward(g)
                    if track:
                        case["running"].append({"mean": t(bn.running_mean), "var": t(bn.running_var),
                                                "num_batches_tracked": int(bn.num_batches_tracked)})
                case["last_y"] = t(y)
                case["last_grad_x"] = t(x.grad)
                if affine:
                    case["last_grad_weight"] = t(bn.weight.grad)
                    case["last_grad_bias"] = t(bn.bias.grad)
                bn.eval()
                x = tensor(shape, 40, 1.5, 0.5).requires_grad_(True)
                g = tensor(shape, 41)
                y = bn(x)
                y.backward(g)
                case["eval_y"] = t(y)
                case["eval_grad_x"] = t(x.grad)
                batch_norm[name] = case

conv2d = {}
for (n, cin, h, w, cout, k, stride, pad, dil) in ((2, 3, 7, 6, 4, 3, 2, 1, 1), (2, 1, 28, 28, 6, 5, 1, 2, 1),
                                                 (2, 6, 14, 14, 16, 5, 1, 0, 1), (2, 2, 9, 9, 3, 3, 1, 2, 2)):
    x = tensor((n, cin, h, w), 50).requires_grad_(True)
    wt = tensor((cout, cin, k, k), 51, 0.3).requires_grad_(True)
    b = tensor((cout,), 52).requires_grad_(True)
    y = F.conv2d(x, wt, b, stride=stride, padding=pad, dilation=dil)
    g = tensor(tuple(y.shape), 53)
    y.backward(g)
    conv2d["n%d_c%d_%dx%d_o%d_k%d_s%d_p%d_d%d" % (n, cin, h, w, cout, k, stride, pad, dil)] = {
        "geometry": [n, cin, h, w, cout, k, stride, pad, dil], "y": t(y), "grad_x": t(x.grad),
        "grad_weight": t(wt.grad), "grad_bias": t(b.grad)}


net = LeNet5()
with torch.no_grad():
    # Weights and biases from the pattern (seed = position in the parameter list), scaled like PyTorch's init.
    for i, (name, p) in enumerate(net.named_parameters()):
        if name.startswith("bn"):
            continue
        bound = 1 / math.sqrt(math.prod(p.shape[1:])) if p.dim() > 1 else 0.1
        p.copy_(tensor(tuple(p.shape), 100 + i, bound))
images = tensor((8, 1, 28, 28), 200)
labels = torch.tensor([(3 * i + 1) % 10 for i in range(8)])
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
opt.zero_grad()
loss = F.cross_entropy(net(images), labels)
loss.backward()
grads = {k: summary(p.grad) for k, p in net.named_parameters()}
opt.step()
after = {k: summary(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
lenet_step = {"batch": 8, "labels": labels.tolist(), "loss": float(loss), "grads": grads, "state_after_step": after}

with open(OUT, "w") as f:
    json.dump({"torch_version": torch.__version__, "batch_norm": batch_norm, "conv2d": conv2d,
               "lenet_step": lenet_step}, f)
print("wrote", OUT)
