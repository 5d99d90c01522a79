#!/usr/bin/env python3
"""The floor of one LeNet-5-BN training step: FLOPs and the bytes that must move at least once, per batch size, and
the time they take at a given bandwidth and FLOP rate (measured ones: the device copy bandwidth from `kiln bench bn
--json`, and a FLOP rate you pass).

  python3 bench/lenet_floor.py [--bn-json KILN_BN.json | --gbps 2900] [--tflops 51] [--batches 64,256,1024]
                               [--launches 77] [--launch-us 2.5]

Counting rules (float32, 4 bytes): forward activations are written once and read once by the next layer; the
backward reads each saved activation once and writes and reads each gradient once; parameters, their gradients
and the momentum buffers are read/written once per step. FLOPs: 2 per multiply-add of conv and linear layers,
forward plus backward (data gradient except for the first layer's input, and weight gradient); element-wise
work is counted in bytes only. `--launches` is the number of device operations per eager step (the CPU recorder
counts 77 for LeNet, see the graph-capture log line; `kiln bench lenet --profile` lists them) and `--launch-us` the host cost of each, a third floor that
CUDA graphs remove.
Standard library only.
"""
import argparse
import json

LAYERS = [  # name, output elements per image, parameters, multiply-adds per image (forward)
    ("conv1", 6 * 28 * 28, 6 * 25 + 6, 6 * 28 * 28 * 25),
    ("bn1", 6 * 28 * 28, 12, 0), ("sigmoid1", 6 * 28 * 28, 0, 0), ("pool1", 6 * 14 * 14, 0, 0),
    ("conv2", 16 * 10 * 10, 16 * 150 + 16, 16 * 100 * 150),
    ("bn2", 16 * 10 * 10, 32, 0), ("sigmoid2", 16 * 10 * 10, 0, 0), ("pool2", 16 * 5 * 5, 0, 0),
    ("fc1", 120, 400 * 120 + 120, 400 * 120), ("bn3", 120, 240, 0), ("sigmoid3", 120, 0, 0),
    ("fc2", 84, 120 * 84 + 84, 120 * 84), ("bn4", 84, 168, 0), ("sigmoid4", 84, 0, 0),
    ("fc3", 10, 84 * 10 + 10, 84 * 10),
]
INPUT = 28 * 28


def per_step(batch):
    acts = INPUT + sum(l[1] for l in LAYERS)              # forward: each written once (input read once)
    forward_bytes = 4 * batch * (acts + sum(l[1] for l in LAYERS))   # write + read by the next layer
    grads = sum(l[1] for l in LAYERS)                     # one gradient per activation (not the input)
    backward_bytes = 4 * batch * (acts + 2 * grads)       # read saved activations, write + read gradients
    params = sum(l[2] for l in LAYERS)
    optimizer_bytes = 4 * params * 5                      # read p, g, buf; write p, buf
    macs = sum(l[3] for l in LAYERS)
    first_input_grad = LAYERS[0][3]                       # conv1 needs no input gradient
    flops = 2 * batch * (3 * macs - first_input_grad)
    return flops, forward_bytes + backward_bytes + optimizer_bytes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bn-json", help="kiln bench bn --json output: its 'device copy' row gives the bandwidth")
    ap.add_argument("--gbps", type=float, help="bandwidth in GB/s (ignored with --bn-json)")
    ap.add_argument("--tflops", type=float, help="FP32 FLOP rate in TFLOP/s")
    ap.add_argument("--batches", default="64,256,1024")
    ap.add_argument("--launches", type=int, default=77)
    ap.add_argument("--launch-us", type=float, default=None)
    args = ap.parse_args()
    gbps = args.gbps
    source = "given" if gbps else None
    if args.bn_json:
        with open(args.bn_json) as f:
            doc = json.load(f)
        gbps = next(r["gb_per_s"] for r in doc["rows"] if r["op"] == "device copy")
        source = "measured device copy, %s" % doc.get("backend", "?")
    print("| batch | GFLOP/step | MB/step | bytes floor us | FLOP floor us | launch floor us | floor img/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for b in (int(v) for v in args.batches.split(",")):
        flops, nbytes = per_step(b)
        t_bytes = nbytes / (gbps * 1e9) * 1e6 if gbps else None
        t_flops = flops / (args.tflops * 1e12) * 1e6 if args.tflops else None
        t_launch = args.launches * args.launch_us if args.launch_us else None
        known = [t for t in (t_bytes, t_flops, t_launch) if t]
        floor = max(known) if known else None
        fmt = lambda v, f="{:.1f}": "n/a" if v is None else f.format(v)
        print("| %d | %.3f | %.1f | %s | %s | %s | %s |" % (b, flops / 1e9, nbytes / 1e6, fmt(t_bytes), fmt(t_flops),
              fmt(t_launch), fmt(None if floor is None else b / floor * 1e6, "{:,.0f}")))
    if gbps:
        print("\nbandwidth %.0f GB/s (%s)" % (gbps, source))


if __name__ == "__main__":
    main()
