#!/usr/bin/env python3
"""The same LeNet-5-BN as `./kiln lenet`, in PyTorch: the reference peer for accuracy and speed on a GPU host.

Same model (dev.kiln.models.LeNet5), same data (the four MNIST IDX files), same hyper-parameters as Kiln's
defaults (SGD lr 0.1, momentum 0.9, cosine schedule per step, batch 64, MNIST mean/std normalisation), the whole
training set on the device before the loop, timing of the training loop only with CUDA events.

  python3 bench/pytorch_lenet.py --data DIR --epochs 1 [--batch-size 64] [--device cuda] [--json OUT]
  python3 bench/pytorch_lenet.py --data DIR --throughput 64,256,1024 [--graphs]   # images/s only, as `kiln bench lenet`
  python3 bench/pytorch_lenet.py --throughput 64,256 --pool 4096 --device cpu --threads 2   # random images, no MNIST

--threads sets torch.set_num_threads (on the CPU, the peer of Kiln's -Dkiln.cpu.threads); --pool draws that many
random images in [0, 1) and random labels instead of reading MNIST, as `kiln bench lenet --pool` does.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tools"))
from kiln_torch_models import LeNet5  # noqa: E402  (dev.kiln.models.LeNet5's twin, shared with the goldens)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        data = f.read()
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(dims)


def load(data_dir, name):
    for suffix in (".gz", ""):
        p = os.path.join(data_dir, name + suffix)
        if os.path.exists(p):
            return read_idx(p)
    raise SystemExit("missing %s(.gz) in %s" % (name, data_dir))


class Timer:
    """CUDA events on the GPU (the time the device spent, after the host queued it), perf_counter on the CPU."""

    def __init__(self, dev):
        self.cuda = dev.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            torch.cuda.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000.0
        else:
            self.seconds = time.perf_counter() - self.t0


def time_training(args, dev, train_x, train_y, bs, graphed):
    """Images/s of SGD training steps (and of inference) at batch bs, each batch gathered on the device by index,
    the loss read once per timed round, as `kiln bench lenet` does."""
    torch.manual_seed(args.seed)
    net = LeNet5().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
    # a fixed cycle of 64 random batches, drawn once, as `kiln bench lenet`
    idx = torch.randint(0, train_x.shape[0], (64, bs), device=dev)
    static_x, static_y = train_x[idx[0]].clone(), train_y[idx[0]].clone()

    def step(x, y):
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    graph = None
    if graphed:
        # warm-up on a side stream, as torch.cuda.graphs requires, then capture one whole step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step(static_x, static_y)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_loss = step(static_x, static_y)

    def run(s):
        b = idx[s % idx.shape[0]]
        if graph is not None:
            static_x.copy_(train_x[b])
            static_y.copy_(train_y[b])
            graph.replay()
            return static_loss
        return step(train_x[b], train_y[b])

    for s in range(args.warmup):
        run(s)
    rates = []
    for r in range(args.rounds):
        with Timer(dev) as t:
            for s in range(args.steps):
                loss = run(s)
            loss.item()
        rates.append(bs * args.steps / t.seconds)
    out = {"train_images_per_second": sorted(rates)[len(rates) // 2]}
    if not graphed:
        net.eval()
        with torch.no_grad():
            for s in range(args.warmup):
                net(train_x[idx[s % idx.shape[0]]])
            rates = []
            for r in range(args.rounds):
                with Timer(dev) as t:
                    for s in range(args.steps):
                        net(train_x[idx[s % idx.shape[0]]])
                rates.append(bs * args.steps / t.seconds)
        out["inference_images_per_second"] = sorted(rates)[len(rates) // 2]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="directory with the four MNIST files (not needed with --throughput and --pool)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--throughput", help="comma-separated batch sizes: time training and inference steps only")
    ap.add_argument("--steps", type=int, default=100, help="steps per timed round (throughput mode)")
    ap.add_argument("--warmup", type=int, default=150, help="untimed steps first (throughput mode)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds, median reported (throughput mode)")
    ap.add_argument("--graphs", action="store_true", help="also time the step captured with torch.cuda.graph")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU intra-op threads)")
    ap.add_argument("--pool", type=int, help="throughput mode: gather batches from this many random images")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.data and not (args.throughput and args.pool):
        ap.error("--data is required unless --throughput is given with --pool")
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(args.device)
    norm = lambda u8: ((u8.to(torch.float32) / 255.0 - 0.1307) / 0.3081).unsqueeze(1)
    if args.throughput and args.pool:
        train_x = torch.rand(args.pool, 1, 28, 28).to(dev)
        train_y = torch.randint(0, 10, (args.pool,)).to(dev)
    else:
        train_x = norm(load(args.data, "train-images-idx3-ubyte")).to(dev)
        train_y = load(args.data, "train-labels-idx1-ubyte").to(torch.int64).to(dev)
        test_x = norm(load(args.data, "t10k-images-idx3-ubyte")).to(dev)
        test_y = load(args.data, "t10k-labels-idx1-ubyte").to(torch.int64).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    result = {"torch_version": torch.__version__, "device": str(dev), "threads": torch.get_num_threads(),
              "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}

    if args.throughput:
        rows = []
        for bs in [int(b) for b in args.throughput.split(",")]:
            row = {"batch": bs}
            row.update(time_training(args, dev, train_x, train_y, bs, graphed=False))
            if args.graphs and dev.type == "cuda":
                row["graphed_train_images_per_second"] = time_training(
                    args, dev, train_x, train_y, bs, graphed=True)["train_images_per_second"]
            rows.append(row)
            print("batch %5d: train %10.0f images/s%s, inference %10.0f images/s" % (
                bs, row["train_images_per_second"],
                " (graphed %.0f)" % row["graphed_train_images_per_second"] if "graphed_train_images_per_second" in row else "",
                row["inference_images_per_second"]))
        result["throughput"] = rows
    else:
        net = LeNet5().to(dev)
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
        n = train_x.shape[0]
        batches = math.ceil(n / args.batch_size)
        total = batches * args.epochs
        gen = torch.Generator(device="cpu").manual_seed(args.seed)
        train_seconds = 0.0
        test_pass_seconds = 0.0
        step = 0
        for epoch in range(args.epochs):
            net.train()
            perm = torch.randperm(n, generator=gen).to(dev)
            if dev.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
            t0 = time.perf_counter()
            for i in range(batches):
                for g in opt.param_groups:
                    g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / total))
                b = perm[i * args.batch_size:(i + 1) * args.batch_size]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(train_x[b]), train_y[b]).backward()
                opt.step()
                step += 1
            if dev.type == "cuda":
                end.record()
                torch.cuda.synchronize()
                train_seconds += start.elapsed_time(end) / 1000.0
            else:
                train_seconds += time.perf_counter() - t0
            net.eval()
            t_eval = time.perf_counter()
            with torch.no_grad():
                correct = sum(int((net(test_x[j:j + 1000]).argmax(1) == test_y[j:j + 1000]).sum())
                              for j in range(0, test_x.shape[0], 1000))
            acc = correct / test_x.shape[0]
            test_pass_seconds = test_pass_seconds + time.perf_counter() - t_eval
            print("epoch %d: test accuracy %.4f" % (epoch + 1, acc))
        result.update({"test_accuracy": acc, "epochs": args.epochs, "train_seconds": train_seconds,
                       "train_images_per_second": n * args.epochs / train_seconds, "batch_size": args.batch_size,
                       "test_pass_seconds": test_pass_seconds})
        print("PyTorch LeNet-BN: test accuracy %.2f%%, %.0f images/s (%s)" % (
            100 * acc, result["train_images_per_second"], result["device_name"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
