#!/usr/bin/python3
"""PyTorch's numbers for the shape ops and the layers built on them, computed by PyTorch on the CPU (1.13 works).

Run from the repository root with an interpreter that has torch:  /usr/bin/python3 tools/pytorch_shape_goldens.py

Writes core/src/test/resources/goldens/pytorch-shape-goldens.json (committed; CI has no PyTorch), read by
dev.kiln.suites.ShapeGoldensSuite on every backend:
  conv2d_grouped     F.conv2d with groups (depthwise among them), rectangular kernels and per-axis stride, padding
                     and dilation, with and without bias: output and the gradients of input, weight and bias
  conv2d_init        nn.Conv2d's default initialisation of grouped and rectangular layers (sha256 of the values)
  adaptive_pool      F.adaptive_avg_pool2d / F.adaptive_max_pool2d (with indices), forward and backward
  upsample_nearest   nn.Upsample(scale_factor, mode='nearest'), forward and backward
  slices             torch.cat, torch.stack, torch.narrow and slicing, forward and backward
  separable_block    a MobileNet-style block (depthwise 3x3 stride 2, BN, ReLU, pointwise 1x1, BN, ReLU, global
                     average pool), one training-mode forward and backward
  tiny_unet          a two-level U-Net (conv, max pool, conv, nearest upsample, cat with the skip, conv): forward and
                     backward

Inputs and weights are not stored: both sides compute them with pattern(n, seed) of tools/goldens_common.py.
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from goldens_common import CORE, dump, sha256, t, tensor


def conv2d_grouped():
    out = {}
    # n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias
    for geo in ((2, 4, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, True),     # depthwise
                (2, 3, 8, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3, False),    # depthwise, multiplier 2, stride 2, no bias
                (1, 4, 9, 8, 6, 3, 2, 2, 1, 1, 0, 1, 2, 2, True),     # 2 groups, rectangular kernel, per-axis geometry
                (2, 6, 5, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 3, True),     # grouped pointwise
                (1, 2, 6, 9, 4, 1, 5, 1, 2, 0, 2, 1, 1, 1, False)):   # 1x5 kernel, ungrouped
        n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, has_bias = geo
        x = tensor((n, cin, h, w), 90).requires_grad_(True)
        wt = tensor((cout, cin // groups, kh, kw), 91, 0.4).requires_grad_(True)
        b = tensor((cout,), 92).requires_grad_(True) if has_bias else None
        y = F.conv2d(x, wt, b, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
        g = tensor(tuple(y.shape), 93)
        y.backward(g)
        key = "n%d_c%d_%dx%d_o%d_k%dx%d_s%dx%d_p%dx%d_d%dx%d_g%d_%s" % (
            n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, "bias" if has_bias else "nobias")
        out[key] = {"geometry": list(geo[:14]), "bias": has_bias, "y_shape": list(y.shape), "y": t(y),
                    "grad_x": t(x.grad), "grad_weight": t(wt.grad), "grad_bias": t(b.grad) if has_bias else None}
    return out


def conv2d_init():
    out = {}
    for (seed, cin, cout, kh, kw, groups, bias) in ((3, 8, 16, 3, 5, 4, True), (4, 32, 32, 3, 3, 32, False),
                                                   (5, 6, 12, 1, 1, 3, True)):
        torch.manual_seed(seed)
        m = nn.Conv2d(cin, cout, (kh, kw), groups=groups, bias=bias)
        out["Conv2d_%d_%d_%dx%d_g%d_seed%d" % (cin, cout, kh, kw, groups, seed)] = {
            "args": [seed, cin, cout, kh, kw, groups, 1 if bias else 0], "weight_shape": list(m.weight.shape),
            "weight_sha256": sha256(m.weight), "bias_sha256": sha256(m.bias) if bias else None,
            "weight_head": t(m.weight.reshape(-1)[:6])}
    return out


def adaptive_pool():
    out = {}
    for (n, c, h, w, oh, ow) in ((2, 3, 7, 6, 1, 1), (2, 3, 7, 6, 3, 4), (1, 2, 8, 8, 4, 4), (1, 2, 3, 4, 5, 7),
                                 (2, 2, 10, 9, 4, 2), (1, 3, 5, 5, 5, 5)):
        for kind in ("avg", "max"):
            x = tensor((n, c, h, w), 100).requires_grad_(True)
            if kind == "avg":
                y = F.adaptive_avg_pool2d(x, (oh, ow))
                idx = None
            else:
                y, idx = F.adaptive_max_pool2d(x, (oh, ow), return_indices=True)
            g = tensor(tuple(y.shape), 101)
            y.backward(g)
            out["%s_n%d_c%d_%dx%d_to_%dx%d" % (kind, n, c, h, w, oh, ow)] = {
                "kind": kind, "geometry": [n, c, h, w, oh, ow], "y": t(y), "grad_x": t(x.grad),
                "indices": [int(i) for i in idx.reshape(-1).tolist()] if idx is not None else None}
    # ties: values rounded to a few levels, so windows hold equal maxima (PyTorch keeps the first)
    x = torch.round(tensor((1, 2, 6, 7), 102) * 1.5).requires_grad_(True)
    y, idx = F.adaptive_max_pool2d(x, (4, 3), return_indices=True)
    g = tensor(tuple(y.shape), 103)
    y.backward(g)
    out["max_ties_n1_c2_6x7_to_4x3"] = {"kind": "max", "geometry": [1, 2, 6, 7, 4, 3], "rounded": True, "y": t(y),
                                        "grad_x": t(x.grad), "indices": [int(i) for i in idx.reshape(-1).tolist()]}
    return out


def upsample_nearest():
    out = {}
    for (n, c, h, w, sh, sw) in ((2, 3, 4, 5, 2, 2), (1, 2, 3, 3, 3, 1), (1, 1, 2, 3, 1, 4), (1, 2, 3, 2, 3, 3)):
        x = tensor((n, c, h, w), 110).requires_grad_(True)
        y = nn.Upsample(scale_factor=(sh, sw), mode="nearest")(x)
        g = tensor(tuple(y.shape), 111)
        y.backward(g)
        out["n%d_c%d_%dx%d_scale%dx%d" % (n, c, h, w, sh, sw)] = {
            "geometry": [n, c, h, w, sh, sw], "y": t(y), "grad_x": t(x.grad)}
    return out


def slices():
    a = tensor((2, 3, 4), 120).requires_grad_(True)
    b = tensor((2, 5, 4), 121).requires_grad_(True)
    c = tensor((2, 1, 4), 122).requires_grad_(True)
    cat1 = torch.cat([a, b, c], dim=1)
    cat1.backward(tensor(tuple(cat1.shape), 123))
    cat_case = {"y": t(cat1), "grad_a": t(a.grad), "grad_b": t(b.grad), "grad_c": t(c.grad)}

    p = tensor((3, 2, 2), 124).requires_grad_(True)
    q = tensor((3, 2, 3), 125).requires_grad_(True)
    cat_last = torch.cat([p, q], dim=-1)
    cat_last.backward(tensor(tuple(cat_last.shape), 126))
    cat_last_case = {"y": t(cat_last), "grad_p": t(p.grad), "grad_q": t(q.grad)}

    u = tensor((3, 4), 127).requires_grad_(True)
    v = tensor((3, 4), 128).requires_grad_(True)
    st = torch.stack([u, v, u], dim=1)
    st.backward(tensor(tuple(st.shape), 129))
    stack_case = {"shape": list(st.shape), "y": t(st), "grad_u": t(u.grad), "grad_v": t(v.grad)}

    x = tensor((2, 6, 5), 130).requires_grad_(True)
    nw = torch.narrow(x, 1, 2, 3)
    sl = x[:, :, -3:]
    (nw.sum(dim=2, keepdim=True) * tensor((2, 3, 1), 131)).sum().backward(retain_graph=True)
    narrow_grad = x.grad.clone()
    x.grad = None
    (sl * tensor(tuple(sl.shape), 132)).sum().backward()
    narrow_case = {"narrow_y": t(nw), "narrow_grad_x": t(narrow_grad), "slice_y": t(sl), "slice_grad_x": t(x.grad)}
    return {"cat_dim1": cat_case, "cat_dim_last": cat_last_case, "stack_dim1": stack_case, "narrow_slice": narrow_case}


def load(module, seed, scale):
    """Every parameter of `module` from pattern(), in registration order, seeds counting up from `seed`."""
    with torch.no_grad():
        for i, (_, prm) in enumerate(module.named_parameters()):
            prm.copy_(tensor(tuple(prm.shape), seed + i, scale))


def separable_block():
    block = nn.Sequential(
        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    load(block, 140, 0.5)
    x = tensor((3, 4, 9, 9), 150).requires_grad_(True)
    y = block(x)
    y.backward(tensor(tuple(y.shape), 151))
    return {"y": t(y), "grad_x": t(x.grad),
            "grads": {k: t(p.grad) for k, p in block.named_parameters()},
            "running": {k: t(v) for k, v in block.state_dict().items() if "running" in k}}


class TinyUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Conv2d(4, 8, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec = nn.Conv2d(12, 2, 3, padding=1)

    def forward(self, x):
        skip = F.relu(self.enc(x))
        m = F.relu(self.mid(self.pool(skip)))
        return self.dec(torch.cat([self.up(m), skip], dim=1))


def tiny_unet():
    net = TinyUNet()
    load(net, 160, 0.4)
    x = tensor((2, 1, 8, 8), 170).requires_grad_(True)
    y = net(x)
    y.backward(tensor(tuple(y.shape), 171))
    return {"y": t(y), "grad_x": t(x.grad), "grads": {k: t(p.grad) for k, p in net.named_parameters()}}


def main():
    dump(os.path.join(CORE, "pytorch-shape-goldens.json"), {
        "torch_version": torch.__version__, "conv2d_grouped": conv2d_grouped(), "conv2d_init": conv2d_init(),
        "adaptive_pool": adaptive_pool(), "upsample_nearest": upsample_nearest(), "slices": slices(),
        "separable_block": separable_block(), "tiny_unet": tiny_unet()})


if __name__ == "__main__":
    main()
