"""The alpha-beta model of docs/spark.md: time per all-reduce of P float32 values over N ranks, for the ring,
recursive doubling and the mesh, with a per-step latency alpha and a per-byte time beta per rank (the link's, or the
software's per-byte cost when that is larger); heap per rank for gathering every rank's array (the default
Collective methods) against the ring's array plus two chunks.
Usage: python3 bench/allreduce_model.py [alpha_us] [software_beta_ns]"""
import math
import sys

alpha = float(sys.argv[1]) * 1e-6 if len(sys.argv) > 1 else 50e-6
software_beta = float(sys.argv[2]) * 1e-9 if len(sys.argv) > 2 else 0.0
links = [("10 GbE", 8 / 10e9), ("100 GbE", 8 / 100e9)]
models = [("LeNet-5-BN", 62_158), ("ResNet-50", 25_557_032)]


def ring(n, size, beta):
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * size * beta


def doubling(n, size, beta):
    steps = int(math.log2(n)) + (0 if n & (n - 1) == 0 else 2)
    return steps * (alpha + size * beta)


def mesh(n, size, beta):
    # reads in rank order: N-1 whole arrays one after the other on every rank's link
    return (n - 1) * (alpha + size * beta)


def mb(b):
    return "%.0f MB" % (b / 1e6) if b >= 1e6 else "%.0f kB" % (b / 1e3)


print("| model | ranks | link | ring ms | recursive doubling ms | mesh ms | AUTO picks | heap: gather all vs ring |")
print("|---|---:|---|---:|---:|---:|---|---|")
for name, p in models:
    size = 4 * p
    for n in (8, 64, 512):
        for link, net_beta in links:
            beta = max(net_beta, software_beta)
            r, d, m = ring(n, size, beta), doubling(n, size, beta), mesh(n, size, beta)
            auto_beta = alpha / 62_500   # what AUTO assumes: Options.DEFAULT_LATENCY_BYTES
            pick = "doubling" if doubling(n, size, auto_beta) < ring(n, size, auto_beta) else "ring"
            heap = "%s vs %s" % (mb(n * size), mb(size + 2 * size / n))
            print("| %s | %d | %s | %.2f | %.2f | %.1f | %s | %s |" % (name, n, link, r * 1e3, d * 1e3, m * 1e3, pick,
                                                                  heap))
