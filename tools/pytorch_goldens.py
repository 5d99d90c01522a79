#!/usr/bin/python3
"""PyTorch's own numbers for Kiln's tests, computed by PyTorch on the CPU (Debian's python3-torch, 1.13, works).

Run from the repository root with an interpreter that has torch:  /usr/bin/python3 tools/pytorch_goldens.py

Writes (all committed; CI has no PyTorch):
  core/src/test/resources/goldens/pytorch-goldens.json   read by dev.kiln.suites.PyTorchGoldensSuite (every backend)
      batch_norm   BatchNorm1d (N,C) and (N,C,L), BatchNorm2d; affine on/off; tracking on/off; momentum 0.1, None,
                   0 and 1: running statistics after each of 3 training steps, the last output and gradients
                   (input, weight, bias), then an eval forward/backward
      conv2d       forward and backward for four geometries (LeNet's among them)
      pool2d       average and max pooling, forward and backward
      sigmoid, cross_entropy   forward and backward
      sgd, adam    several steps on one parameter from given gradients, for several hyper-parameter sets
      lenet_step   the post's LeNetModel, one SGD step (lr 0.1, momentum 0.9) from pattern weights: loss, every
                   gradient, every parameter and buffer after the step (sum, sum of squares, first values)
      lenet_train  torch.manual_seed(0), LeNetModel(), 20 SGD steps on batches from torch.randn/torch.randint:
                   loss per step, running statistics after, eval logits
      lenet_post_file  eval logits of the model saved in goldens/lenet-post.safetensors
  core/src/test/resources/goldens/pytorch-random.json     read by the random-stream tests (PyTorch's CPU generator)
  core/src/test/resources/goldens/lenet-post.safetensors  a state dict of the post's LeNetModel (written by hand:
                   the safetensors package need not be installed)
  examples/src/test/resources/goldens/post-demos.json     what the post's scripts print (running statistics,
                   with and without tracking) and the bn-demo's numbers

Inputs for the kernel sections are not stored: both sides compute them from pattern(n, seed) of
tools/goldens_common.py, which PyTorchGoldensSuite reimplements. LeNetModel is tools/kiln_torch_models.py's. Everything
PyTorch computes here runs on the CPU in float32.
"""
import contextlib
import io
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from goldens_common import CORE, EXAMPLES, big, dump, sha256, summary, t, tensor, write_safetensors
from kiln_torch_models import LeNetModel  # the post's model, verbatim


# ------------------------------------------------------------------ kernels and layers

def batch_norm_cases():
    out = {}
    for kind, shape in (("BatchNorm1d", (6, 4)), ("BatchNorm1d", (5, 3, 4)), ("BatchNorm2d", (4, 3, 3, 4))):
        for affine in (True, False):
            for track in (True, False):
                for momentum in (0.1, None, 0.0, 1.0):
                    if not track and momentum != 0.1:
                        continue  # without running statistics the momentum is never used
                    c = shape[1]
                    bn = getattr(nn, kind)(c, eps=1e-5, momentum=momentum, affine=affine, track_running_stats=track)
                    if affine:
                        with torch.no_grad():
                            bn.weight.copy_(tensor((c,), 11, 1.0, 1.0))
                            bn.bias.copy_(tensor((c,), 12, 0.5))
                    name = "%s_%s_affine%d_track%d_momentum%s" % (kind, "x".join(map(str, shape)), affine, track,
                                                                   momentum)
                    case = {"kind": kind, "shape": list(shape), "affine": affine, "track": track,
                            "momentum": momentum, "running": []}
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
                    out[name] = case
    return out


def conv2d_cases():
    out = {}
    for (n, cin, h, w, cout, k, stride, pad, dil) in ((2, 3, 7, 6, 4, 3, 2, 1, 1), (2, 1, 28, 28, 6, 5, 1, 2, 1),
                                                     (2, 6, 14, 14, 16, 5, 1, 0, 1), (2, 2, 9, 9, 3, 3, 1, 2, 2)):
        x = tensor((n, cin, h, w), 50).requires_grad_(True)
        wt = tensor((cout, cin, k, k), 51, 0.3).requires_grad_(True)
        b = tensor((cout,), 52).requires_grad_(True)
        y = F.conv2d(x, wt, b, stride=stride, padding=pad, dilation=dil)
        g = tensor(tuple(y.shape), 53)
        y.backward(g)
        out["n%d_c%d_%dx%d_o%d_k%d_s%d_p%d_d%d" % (n, cin, h, w, cout, k, stride, pad, dil)] = {
            "geometry": [n, cin, h, w, cout, k, stride, pad, dil], "y": big(y), "grad_x": big(x.grad),
            "grad_weight": big(wt.grad), "grad_bias": big(b.grad)}
    return out


def pool2d_cases():
    out = {}
    for kind in ("avg", "max"):
        for (n, c, h, w, k, s, p) in ((2, 3, 8, 8, 2, 2, 0), (2, 6, 28, 28, 2, 2, 0), (1, 2, 7, 9, 3, 2, 1)):
            x = tensor((n, c, h, w), 60).requires_grad_(True)
            if kind == "avg":
                y = F.avg_pool2d(x, k, s, p)  # count_include_pad=True, PyTorch's default
            else:
                y = F.max_pool2d(x, k, s, p)
            g = tensor(tuple(y.shape), 61)
            y.backward(g)
            out["%s_n%d_c%d_%dx%d_k%d_s%d_p%d" % (kind, n, c, h, w, k, s, p)] = {
                "kind": kind, "geometry": [n, c, h, w, k, s, p], "y": big(y), "grad_x": big(x.grad)}
    return out


def sigmoid_case():
    x = tensor((4, 50), 70, 12.0).requires_grad_(True)  # up to |x| = 12: both tails
    y = torch.sigmoid(x)
    y.backward(tensor((4, 50), 71))
    return {"shape": [4, 50], "scale": 12.0, "y": t(y), "grad_x": t(x.grad)}


def cross_entropy_case():
    logits = tensor((8, 10), 80, 4.0).requires_grad_(True)
    labels = torch.tensor([(7 * i + 2) % 10 for i in range(8)])
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    return {"shape": [8, 10], "scale": 4.0, "labels": labels.tolist(), "loss": float(loss), "grad": t(logits.grad)}


def optimizer_cases():
    def run(make, steps=5):
        p = nn.Parameter(tensor((37,), 90))
        opt = make([p])
        values = []
        for k in range(steps):
            opt.zero_grad()
            p.grad = tensor((37,), 91 + k, 1.0 + 0.5 * k)
            opt.step()
            values.append(t(p))
        return values

    sgd = {}
    for (lr, momentum, dampening, nesterov, wd) in ((0.1, 0.9, 0.0, False, 0.0), (0.05, 0.9, 0.1, False, 0.01),
                                                    (0.1, 0.9, 0.0, True, 0.001), (0.2, 0.0, 0.0, False, 0.0)):
        sgd["lr%g_m%g_d%g_n%d_wd%g" % (lr, momentum, dampening, nesterov, wd)] = {
            "lr": lr, "momentum": momentum, "dampening": dampening, "nesterov": nesterov, "weight_decay": wd,
            "after_step": run(lambda ps: optim.SGD(ps, lr=lr, momentum=momentum, dampening=dampening,
                                                   nesterov=nesterov, weight_decay=wd))}
    adam = {}
    for (cls, lr, b1, b2, eps, wd) in (("Adam", 1e-3, 0.9, 0.999, 1e-8, 0.0), ("Adam", 0.01, 0.8, 0.99, 1e-6, 0.01),
                                       ("AdamW", 1e-3, 0.9, 0.999, 1e-8, 0.01)):
        adam["%s_lr%g_b%g_%g_eps%g_wd%g" % (cls, lr, b1, b2, eps, wd)] = {
            "class": cls, "lr": lr, "beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd,
            "after_step": run(lambda ps: getattr(optim, cls)(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd))}
    return sgd, adam


# ------------------------------------------------------------------ LeNet

def lenet_step():
    net = LeNetModel()
    with torch.no_grad():
        # Weights and biases from the pattern (seed = position in the parameter list), scaled like PyTorch's init.
        for i, (name, p) in enumerate(net.named_parameters()):
            if name.startswith("bn"):
                continue
            bound = 1 / math.sqrt(math.prod(p.shape[1:])) if p.dim() > 1 else 0.1
            p.copy_(tensor(tuple(p.shape), 100 + i, bound))
    images = tensor((8, 1, 28, 28), 200)
    labels = torch.tensor([(3 * i + 1) % 10 for i in range(8)])
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad()
    loss = F.cross_entropy(net(images), labels)
    loss.backward()
    grads = {k: summary(p.grad) for k, p in net.named_parameters()}
    opt.step()
    after = {k: summary(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    return {"batch": 8, "labels": labels.tolist(), "loss": float(loss), "grads": grads, "state_after_step": after}


def lenet_train(seed=0, steps=20, batch=16):
    """The whole pipeline from one seed, as a PyTorch user writes it: init, random batches, SGD, eval."""
    torch.manual_seed(seed)
    net = LeNetModel()
    init = {k: sha256(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(steps):
        images = torch.randn(batch, 1, 28, 28)
        labels = torch.randint(0, 10, (batch,))
        opt.zero_grad()
        loss = F.cross_entropy(net(images), labels)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    net.eval()
    with torch.no_grad():
        logits = net(tensor((8, 1, 28, 28), 210))
    state = {k: summary(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    return {"seed": seed, "steps": steps, "batch": batch, "lr": 0.1, "momentum": 0.9, "init_sha256": init,
            "losses": losses, "state_after": state, "eval_logits": t(logits)}


def lenet_post_file(path):
    """A trained-looking LeNetModel (3 SGD steps so the running statistics move), saved, and its eval logits."""
    torch.manual_seed(7)
    net = LeNetModel()
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        images = torch.randn(16, 1, 28, 28)
        labels = torch.randint(0, 10, (16,))
        opt.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        opt.step()
    write_safetensors(path, net.state_dict(),
                      {"format": "pt", "source": "tools/pytorch_goldens.py: LeNetModel from the post"})
    net.eval()
    with torch.no_grad():
        logits = net(tensor((4, 1, 28, 28), 220))
    return {"file": "goldens/lenet-post.safetensors", "input_seed": 220, "batch": 4, "eval_logits": t(logits),
            "keys": list(net.state_dict().keys())}


# ------------------------------------------------------------------ random streams

def random_streams():
    out = {}
    cases = []

    def case(name, seed, fn):
        torch.manual_seed(seed)
        cases.append({"name": name, "seed": seed, "values": fn()})

    case("rand_5", 0, lambda: t(torch.rand(5)))
    case("rand_3x7", 3, lambda: t(torch.rand(3, 7)))
    for n in (1, 2, 7, 12, 15):  # the scalar path: double Box-Muller, second value cached
        case("randn_%d" % n, 0, lambda: t(torch.randn(n)))
    for n in (16, 17, 31, 40, 100):  # the vectorised path: all uniforms first, 16 at a time, the tail redrawn
        case("randn_%d" % n, 1, lambda: t(torch.randn(n)))
    # The cached second value carries over from one call to the next.
    case("randn_3_then_randn_5_then_randn_20", 2, lambda: t(torch.randn(3)) + t(torch.randn(5)) + t(torch.randn(20)))
    case("randn_4x3_then_randn_4x2", 0, lambda: t(torch.randn(4, 3)) + t(torch.randn(4, 2)))
    case("normal_mean2_std3_40", 4, lambda: t(torch.empty(40).normal_(2.0, 3.0)))
    case("normal_mean2_std3_5", 4, lambda: t(torch.empty(5).normal_(2.0, 3.0)))
    case("uniform_minus0.2_0.3_50", 5, lambda: t(torch.empty(50).uniform_(-0.2, 0.3)))
    case("randint_0_10_x30", 0, lambda: torch.randint(0, 10, (30,)).tolist())
    case("randint_5_60000_x10", 1, lambda: torch.randint(5, 60000, (10,)).tolist())
    case("randperm_10", 0, lambda: torch.randperm(10).tolist())
    case("randperm_1000_head", 42, lambda: torch.randperm(1000).tolist()[:50])
    case("random_int64_x3", 0, lambda: [int(torch.empty((), dtype=torch.int64).random_().item()) for _ in range(3)])
    case("randn_100000_sha256", 5, lambda: sha256(torch.randn(100000)))
    out["cases"] = cases

    layers = {}
    torch.manual_seed(0)
    lin = nn.Linear(400, 120)
    layers["Linear_400_120_seed0"] = {"weight_sha256": sha256(lin.weight), "bias_sha256": sha256(lin.bias),
                                      "weight_head": t(lin.weight.reshape(-1)[:8]), "bias_head": t(lin.bias[:8])}
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 16, 5)
    layers["Conv2d_6_16_5_seed1"] = {"weight_sha256": sha256(conv.weight), "bias_sha256": sha256(conv.bias),
                                     "weight_head": t(conv.weight.reshape(-1)[:8]), "bias_head": t(conv.bias[:8])}
    torch.manual_seed(2)
    bn = nn.BatchNorm2d(6)
    after = t(torch.rand(4))  # BatchNorm's initialisation draws nothing: the stream is where it was
    layers["BatchNorm2d_6_seed2"] = {"weight": t(bn.weight), "bias": t(bn.bias), "running_mean": t(bn.running_mean),
                                     "running_var": t(bn.running_var), "rand_4_after": after}
    out["layers"] = layers

    lenet = {}
    for seed in (0, 42):
        torch.manual_seed(seed)
        net = LeNetModel()
        lenet[str(seed)] = {k: sha256(v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    out["lenet_init_sha256"] = lenet

    # DataLoader(shuffle=True, generator=torch.Generator().manual_seed(seed)): the order per epoch.
    orders = {}
    for seed, n in ((0, 100), (42, 1000)):
        g = torch.Generator()
        g.manual_seed(seed)
        loader = torch.utils.data.DataLoader(list(range(n)), batch_size=10, shuffle=True, generator=g)
        orders["seed%d_n%d" % (seed, n)] = {"seed": seed, "n": n,
                                            "epochs": [[int(i) for b in loader for i in b] for _ in range(3)]}
    out["data_order"] = orders
    return out


# ------------------------------------------------------------------ the post's demos

POST_RUNNING_STATS = r'''
import torch
import torch.nn as nn
import torch.optim as optim

# Set random seed for reproducibility
torch.manual_seed(0)

# Define a simple model with BatchNorm
class SimpleModel(nn.Module):
    def __init__(self, input_dim, output_dim):
        super(SimpleModel, self).__init__()
        self.fc = nn.Linear(input_dim, output_dim)
        self.bn = nn.BatchNorm1d(output_dim%(TRACK)s)

    def forward(self, x):
        x = self.fc(x)
        x = self.bn(x)
        return x

# Initialize model, loss function, and optimizer
model = SimpleModel(input_dim=3, output_dim=2)
criterion = nn.MSELoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)

# Print initial running stats
print("Initial running_mean:", model.bn.running_mean)
print("Initial running_var:", model.bn.running_var)
print("-" * 50)

# Simulate training
model.train()  # Set to training mode

for epoch in range(3):
    # Generate dummy input and target
    input = torch.randn(4, 3)  # Batch size of 4
    target = torch.randn(4, 2)

    # Forward pass
    output = model(input)
    loss = criterion(output, target)

    # Backward pass and optimization
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    # Print running stats after each epoch
    print(f"Epoch {epoch+1}:")
    print("  running_mean:", model.bn.running_mean)
    print("  running_var:", model.bn.running_var)
    print("-" * 50)

# Switch to evaluation mode
model.eval()

# Print running stats before inference
print("After Training:")
print("  running_mean:", model.bn.running_mean)
print("  running_var:", model.bn.running_var)
print("-" * 50)

# Perform inference
with torch.no_grad():
    test_input = torch.randn(2, 3)
    test_output = model(test_input)
    print("Inference output:", test_output)
    print("-" * 50)

# Print running stats after inference to show they haven't changed
print("After Inference (Evaluation Mode):")
print("  running_mean:", model.bn.running_mean)
print("  running_var:", model.bn.running_var)
print("-" * 50)
'''


def run_script(source):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(source, "<post>", "exec"), {"__name__": "__post__"})
    return buf.getvalue()


def post_demos():
    tracked = run_script(POST_RUNNING_STATS % {"TRACK": ""})
    untracked = run_script(POST_RUNNING_STATS % {"TRACK": ", track_running_stats=False"})
    torch.manual_seed(0)
    x = (torch.randn((20, 2)) + 5) * 2
    gamma = torch.Tensor([1.0, 1.0])
    beta = torch.Tensor([0.0, 0.0])
    epsilon = 1e-5
    mean = x.mean(dim=0)
    variance = x.var(dim=0, unbiased=False)
    y = gamma * (x - mean) / torch.sqrt(variance + epsilon) + beta
    bn_layer = torch.nn.BatchNorm1d(num_features=2, eps=epsilon, affine=True)
    output = bn_layer(x)
    return {"running_stats_seed0": tracked, "running_stats_seed0_untracked": untracked,
            "bn_demo_seed0": {"x": t(x), "mean": t(mean), "variance": t(variance), "y": t(y),
                              "bn_output": t(output), "allclose": bool(torch.allclose(output, y, rtol=1e-4))}}


def main():
    os.makedirs(CORE, exist_ok=True)
    sgd, adam = optimizer_cases()
    post_file = lenet_post_file(os.path.join(CORE, "lenet-post.safetensors"))
    print("wrote core/src/test/resources/goldens/lenet-post.safetensors")
    dump(os.path.join(CORE, "pytorch-goldens.json"), {
        "torch_version": torch.__version__, "batch_norm": batch_norm_cases(), "conv2d": conv2d_cases(),
        "pool2d": pool2d_cases(), "sigmoid": sigmoid_case(), "cross_entropy": cross_entropy_case(), "sgd": sgd,
        "adam": adam, "lenet_step": lenet_step(), "lenet_train": lenet_train(), "lenet_post_file": post_file})
    dump(os.path.join(CORE, "pytorch-random.json"), dict(torch_version=torch.__version__, **random_streams()))
    dump(os.path.join(EXAMPLES, "post-demos.json"), dict(torch_version=torch.__version__, **post_demos()))


if __name__ == "__main__":
    main()
