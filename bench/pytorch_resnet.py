#!/usr/bin/env python3
"""The ResNet of `./kiln resnet` (dev.kiln.models.ResNet) in PyTorch: the CPU peer of `kiln bench resnet` and of the
ResNet convolutions of `kiln bench ops --resnet`.

  python3 bench/pytorch_resnet.py --throughput 32,128 --pool 4096 --threads 2 [--json OUT]
  python3 bench/pytorch_resnet.py --conv-ops 128 --threads 2 [--json OUT]
  python3 bench/pytorch_resnet.py --epoch-data DIR --threads 2 [--json OUT]

--throughput: training (SGD lr 0.1, momentum 0.9) and inference images/s on random 1x28x28 images, each batch
gathered by index from --pool images, warm-up excluded, median of --rounds rounds of --steps steps, as
`kiln bench resnet` does. --conv-ops: median time per call of every distinct convolution of the network at that batch
size (forward with F.conv2d, backward-data and backward-weight with aten::convolution_backward), as
`kiln bench ops --resnet` lists them. --epoch-data: one MNIST epoch with the recipe of `./kiln resnet`'s defaults
(batch 128, SGD lr 0.1 with a cosine schedule, momentum 0.9, weight decay 5e-4 on convolution and linear weights only,
shuffled, inputs normalised with 0.1307 / 0.3081), then the test pass at batch 250.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tools"))
from kiln_torch_models import ResNet  # noqa: E402  (dev.kiln.models.ResNet's twin, shared with the goldens)


# (name, input channels, input size, output channels, kernel, stride, padding, calls per training step) of every
# distinct convolution at 28x28 input: the same list as `kiln bench ops --resnet`
CONVS = [
    ("stem 3x3", 1, 28, 16, 3, 1, 1, 1),
    ("layer1 3x3", 16, 28, 16, 3, 1, 1, 4),
    ("layer2 3x3 s2", 16, 28, 32, 3, 2, 1, 1),
    ("layer2 1x1 s2 shortcut", 16, 28, 32, 1, 2, 0, 1),
    ("layer2 3x3", 32, 14, 32, 3, 1, 1, 3),
    ("layer3 3x3 s2", 32, 14, 64, 3, 2, 1, 1),
    ("layer3 1x1 s2 shortcut", 32, 14, 64, 1, 2, 0, 1),
    ("layer3 3x3", 64, 7, 64, 3, 1, 1, 3),
]


def median_seconds(fn, rounds, min_seconds=0.04):
    for _ in range(3):
        fn()
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 >= min_seconds:
            break
        calls *= 2
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return sorted(times)[len(times) // 2]


def conv_ops(n, rounds):
    rows = []
    torch.manual_seed(1)
    for name, cin, size, cout, k, stride, pad, per_step in CONVS:
        x = torch.rand(n, cin, size, size) - 0.5
        w = torch.rand(cout, cin, k, k) - 0.5
        y = F.conv2d(x, w, None, stride, pad)
        dy = torch.rand_like(y) - 0.5
        out = y.shape[2]
        flops = 2.0 * n * cout * out * out * cin * k * k

        def backward(mask):
            return torch.ops.aten.convolution_backward(dy, x, w, None, [stride, stride], [pad, pad], [1, 1], False,
                                                       [0, 0], 1, mask)

        times = {"forward": median_seconds(lambda: F.conv2d(x, w, None, stride, pad), rounds)}
        if cin > 1:  # the stem's input is the images: no gradient is asked of it
            times["backward data"] = median_seconds(lambda: backward([True, False, False]), rounds)
        times["backward weight"] = median_seconds(lambda: backward([False, True, False]), rounds)
        for kind, t in times.items():
            rows.append({"conv": name, "kind": kind, "calls_per_step": per_step, "flops": flops, "seconds": t})
            print("%-24s %-16s %10.1f us %8.2f GFLOP/s" % (name, kind, t * 1e6, flops / t / 1e9), flush=True)
    return rows


def throughput(args, bs, train_x, train_y):
    torch.manual_seed(42)
    net = ResNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    idx = torch.randint(0, train_x.shape[0], (64, bs))  # a fixed cycle of batches, as `kiln bench resnet`

    def step(s):
        b = idx[s % idx.shape[0]]
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(train_x[b]), train_y[b])
        loss.backward()
        opt.step()
        return loss

    for s in range(args.warmup):
        step(s)
    rates = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for s in range(args.steps):
            loss = step(s)
        loss.item()
        rates.append(bs * args.steps / (time.perf_counter() - t0))
    out = {"batch": bs, "train_images_per_second": sorted(rates)[len(rates) // 2]}
    net.eval()
    with torch.no_grad():
        for s in range(args.warmup):
            net(train_x[idx[s % idx.shape[0]]])
        rates = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for s in range(args.steps):
                net(train_x[idx[s % idx.shape[0]]])
            rates.append(bs * args.steps / (time.perf_counter() - t0))
    out["inference_images_per_second"] = sorted(rates)[len(rates) // 2]
    return out


def epoch(args):
    """One training epoch and the test pass, timed as `./kiln resnet` times them."""
    from pytorch_lenet import load  # the IDX reader beside this file
    import math
    norm = lambda u8: ((u8.to(torch.float32) / 255.0 - 0.1307) / 0.3081).unsqueeze(1)
    train_x = norm(load(args.epoch_data, "train-images-idx3-ubyte"))
    train_y = load(args.epoch_data, "train-labels-idx1-ubyte").to(torch.int64)
    test_x = norm(load(args.epoch_data, "t10k-images-idx3-ubyte"))
    test_y = load(args.epoch_data, "t10k-labels-idx1-ubyte").to(torch.int64)
    torch.manual_seed(args.seed)
    net = ResNet()
    decay = [p for p in net.parameters() if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
                          lr=0.1, momentum=0.9)
    bs = 128
    n = train_x.shape[0]
    batches = math.ceil(n / bs)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    net.train()
    t0 = time.perf_counter()
    for i in range(batches):
        for g in opt.param_groups:
            g["lr"] = 0.1 * 0.5 * (1 + math.cos(math.pi * i / batches))
        b = perm[i * bs:(i + 1) * bs]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(train_x[b]), train_y[b]).backward()
        opt.step()
    train_seconds = time.perf_counter() - t0
    net.eval()
    t1 = time.perf_counter()
    with torch.no_grad():
        correct = sum(int((net(test_x[j:j + 250]).argmax(1) == test_y[j:j + 250]).sum())
                      for j in range(0, test_x.shape[0], 250))
    acc = correct / test_x.shape[0]
    result = {"test_accuracy": acc, "epochs": 1, "train_seconds": train_seconds,
              "train_images_per_second": n / train_seconds, "batch_size": bs,
              "test_pass_seconds": time.perf_counter() - t1}
    print("PyTorch ResNet: test accuracy %.2f%%, %.0f images/s" % (100 * acc, result["train_images_per_second"]),
          flush=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--throughput", help="comma-separated batch sizes: training and inference images/s")
    ap.add_argument("--conv-ops", type=int, metavar="N", help="time every distinct convolution at batch N")
    ap.add_argument("--pool", type=int, default=4096, help="random images each batch is gathered from")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds, median reported")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    ap.add_argument("--device", default="cpu", choices=["cpu"], help="cpu only")
    ap.add_argument("--epoch-data", metavar="DIR", help="MNIST directory: train one epoch as ./kiln resnet does")
    ap.add_argument("--seed", type=int, default=42, help="initialisation and data order of --epoch-data")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not args.throughput and not args.conv_ops and not args.epoch_data:
        ap.error("give --throughput, --conv-ops and/or --epoch-data")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"torch_version": torch.__version__, "device": "cpu", "threads": torch.get_num_threads()}
    if args.throughput:
        train_x = torch.rand(args.pool, 1, 28, 28)
        train_y = torch.randint(0, 10, (args.pool,))
        rows = []
        for bs in [int(b) for b in args.throughput.split(",")]:
            row = throughput(args, bs, train_x, train_y)
            rows.append(row)
            print("batch %5d: train %10.0f images/s, inference %10.0f images/s" % (
                bs, row["train_images_per_second"], row["inference_images_per_second"]), flush=True)
        result["throughput"] = rows
    if args.conv_ops:
        result["conv_ops"] = conv_ops(args.conv_ops, args.rounds)
    if args.epoch_data:
        result.update(epoch(args))
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
