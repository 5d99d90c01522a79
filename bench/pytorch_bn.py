#!/usr/bin/env python3
"""The PyTorch side of `kiln bench bn`: BatchNorm2d alone, training forward (with the running-statistics update) and
backward, against a device-to-device copy of the same tensor, timed with CUDA events (median of rounds).

  python3 bench/pytorch_bn.py [--shape 64,64,112,112] [--rounds 7] [--device cuda] [--json OUT]

Bytes are counted as `kiln bench bn` counts them (forward: read x, write y; backward: read x and dy, write dx; copy:
read and write), so the two JSON files line up row by row in bench/compare_table.py --bn.
"""
import argparse
import json
import statistics

import torch


def timed(fn, rounds, device, min_ms=40.0):
    for _ in range(20):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    per_call = []
    for _ in range(rounds):
        calls = 0
        elapsed = 0.0
        while elapsed < min_ms:
            if device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(10):
                    fn()
                end.record()
                end.synchronize()
                elapsed += start.elapsed_time(end)
            else:
                import time
                t0 = time.perf_counter()
                for _ in range(10):
                    fn()
                elapsed += (time.perf_counter() - t0) * 1e3
            calls += 10
        per_call.append(elapsed / calls)
    return statistics.median(per_call)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="64,64,112,112")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json")
    args = ap.parse_args()
    n, c, h, w = (int(v) for v in args.shape.split(","))
    dev = args.device
    torch.manual_seed(1)
    x = torch.randn(n, c, h, w, device=dev, requires_grad=True)
    dy = torch.randn(n, c, h, w, device=dev) * 0.01
    copy_dst = torch.empty_like(x)
    bn = torch.nn.BatchNorm2d(c).to(dev).train()
    with torch.no_grad():
        bn.weight.normal_(1.0, 0.1)
        bn.bias.normal_(0.0, 0.1)
    params = [x, bn.weight, bn.bias]

    def forward():
        with torch.no_grad():
            bn(x)

    state = {}

    def forward_for_backward():
        state["y"] = bn(x)

    def backward():
        torch.autograd.grad(state["y"], params, dy, retain_graph=True)

    def both():
        y = bn(x)
        torch.autograd.grad(y, params, dy)

    def copy():
        copy_dst.copy_(x.detach())

    nbytes = x.numel() * 4
    copy_ms = timed(copy, args.rounds, dev)
    copy_rate = 2 * nbytes / (copy_ms / 1e3)
    forward_for_backward()
    rows = []
    for name, fn, moved in (("device copy", copy, 2 * nbytes),
                            ("bn forward (train, running stats)", forward, 2 * nbytes),
                            ("bn backward", backward, 3 * nbytes),
                            ("bn forward + backward", both, 5 * nbytes)):
        ms = copy_ms if fn is copy else timed(fn, args.rounds, dev)
        rate = moved / (ms / 1e3)
        rows.append({"op": name, "ms": ms, "bytes": moved, "gb_per_s": rate / 1e9, "fraction_of_copy": rate / copy_rate})
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    print("PyTorch %s on %s (cuDNN %s), BN2d %s float32" % (torch.__version__, name,
          torch.backends.cudnn.version() if dev == "cuda" else "-", args.shape))
    print("%-34s %11s %10s %10s %9s" % ("op", "median", "bytes", "GB/s", "% copy"))
    for r in rows:
        print("%-34s %8.3f ms %8.1fMB %10.1f %8.1f%%" % (r["op"], r["ms"], r["bytes"] / 1e6, r["gb_per_s"],
                                                       100 * r["fraction_of_copy"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch_version": torch.__version__, "device": dev, "device_name": name,
                       "shape": [n, c, h, w], "rounds": args.rounds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
