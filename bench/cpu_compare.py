#!/usr/bin/env python3
"""Kiln and PyTorch on this CPU, side by side in one run: LeNet-5-BN (or, with --workload resnet, the ResNet of
`./kiln resnet`) training and inference images/s at each batch size, and one MNIST epoch end to end with the peak RSS
of each process (LeNet). Run through `bench/cpu-compare`.

Both sides use the same thread count (Kiln's -Dkiln.cpu.threads, torch.set_num_threads), the same model and SGD
(lr 0.1, momentum 0.9), and gather every training and inference batch by index from the same number of random
images held in memory (`kiln bench lenet --pool`, `pytorch_lenet.py --pool`). Rounds alternate between the two
processes (Kiln first in even rounds, PyTorch first in odd ones), so a change of machine load hits both; the table
gives the median of the rounds, their spread (min-max) and the Kiln/PyTorch ratio of the medians.

--workload resnet: `kiln bench resnet` beside bench/pytorch_resnet.py, and (unless --conv-batch 0) every distinct
convolution of the network timed on each side (`kiln bench ops --resnet N`, `pytorch_resnet.py --conv-ops N`) with
GFLOP/s and the share of the FMA peak that `bench ops` measures in the same process.

Standard library only: the orchestrator runs under any Python 3; the PyTorch side runs under the interpreter that has
torch ($KILN_TORCH_PYTHON, else /usr/bin/python3, else python3). Nothing is installed.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_python():
    candidates = [os.environ.get("KILN_TORCH_PYTHON"), "/usr/bin/python3", shutil.which("python3"),
                  shutil.which("python")]
    tried = []
    for p in candidates:
        if not p or p in tried or not os.path.exists(p):
            continue
        tried.append(p)
        r = subprocess.run([p, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
        if r.returncode == 0:
            return p, r.stdout.strip(), tried
    return None, None, tried


def run_measured(cmd, env=None, log=None):
    """Runs cmd, returns (exit code, wall seconds, peak RSS in MB of the process); output goes to log."""
    t0 = time.perf_counter()
    with open(log, "w") if log else open(os.devnull, "w") as out:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    return code, wall, usage.ru_maxrss / 1024.0


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fail(msg, log=None):
    sys.stderr.write("cpu-compare: %s\n" % msg)
    if log and os.path.exists(log):
        with open(log) as f:
            sys.stderr.write("".join(f.readlines()[-30:]))
    sys.exit(1)


def spread(values, fmt):
    if not values:
        return "n/a"
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(values), min(values), max(values))


def ratio_cell(k, p):
    if not k or not p:
        return "n/a"
    per_round = sorted(a / b for a, b in zip(k, p))
    return "**%.2fx** (%.2f-%.2f)" % (statistics.median(k) / statistics.median(p), per_round[0], per_round[-1])


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def git_commit():
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (r.stdout.strip() or "unknown") + (" + uncommitted changes" if dirty else "")


def conv_table(args, py, kiln_env, torch_env, tmp):
    """Every distinct ResNet convolution on both sides (one process each, Kiln first), as Markdown lines."""
    n = args.conv_batch
    kout, tout = os.path.join(tmp, "kiln-ops.json"), os.path.join(tmp, "torch-ops.json")
    klog, tlog = os.path.join(tmp, "kiln-ops.txt"), os.path.join(tmp, "torch-ops.txt")
    code, _, _ = run_measured([os.path.join(ROOT, "kiln"), "bench", "ops", "--device", "cpu", "--no-lenet",
                               "--no-large", "--resnet", str(n), "--rounds", str(args.inner_rounds), "--json", kout],
                              env=kiln_env, log=klog)
    kdoc = load_json(kout)
    if code != 0 or kdoc is None:
        fail("kiln bench ops --resnet failed (exit %d)" % code, klog)
    code, _, _ = run_measured([py, os.path.join(ROOT, "bench", "pytorch_resnet.py"), "--threads", str(args.threads),
                               "--conv-ops", str(n), "--rounds", str(args.inner_rounds), "--json", tout],
                              env=torch_env, log=tlog)
    tdoc = load_json(tout)
    if code != 0 or tdoc is None:
        fail("pytorch_resnet.py --conv-ops failed (exit %d)" % code, tlog)
    peak = kdoc["peak_flops"]
    peak_how = kdoc.get("peak_flops_kernel") or "FMA kernel"
    torch_rows = {(r["conv"], r["kind"]): r for r in tdoc["conv_ops"]}
    prefix = "resnet b%d " % n
    rows = []
    for r in kdoc["ops"]:
        name = r["op"][len(prefix):]
        kind = next(k for k in ("forward", "backward data", "backward weight") if name.endswith(" " + k))
        conv = name[:-len(kind) - 1]
        t = torch_rows.get((conv, kind))
        rows.append((conv, kind, r["calls_per_step"], r["flops"], r["seconds"], t["seconds"] if t else None))
    ktotal = sum(c * k for _, _, c, _, k, _ in rows)
    ttotal = sum(c * p for _, _, c, _, _, p in rows if p)
    flops = sum(c * f for _, _, c, f, _, _ in rows)
    out = ["Convolutions at batch %d: every distinct geometry of the network on 1x28x28 images (`kiln bench ops "
           "--resnet %d`, `bench/pytorch_resnet.py --conv-ops %d`: F.conv2d forward, aten::convolution_backward for "
           "the data and weight gradients), median of %d rounds each, one process per side after the throughput "
           "rounds. Measured FMA peak (bench ops, %d threads, same run; %s): %.1f GFLOP/s. Share: of the sum of "
           "calls x time over one training step's convolutions (%.1f GFLOP per step, %.1f MFLOP per image; Kiln %.1f ms, "
           "PyTorch %.1f ms per step in convolutions)." % (n, n, n, args.inner_rounds, args.threads, peak_how, peak / 1e9,
                                                          flops / 1e9, flops / n / 1e6, ktotal * 1e3, ttotal * 1e3), "",
           "| convolution | pass | calls/step | Kiln GFLOP/s (% peak) | PyTorch GFLOP/s (% peak) | Kiln / PyTorch "
           "speed | Kiln share | PyTorch share |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for conv, kind, calls, f, k, p in rows:
        out.append("| %s | %s | %d | %.1f (%.0f%%) | %s | %s | %.0f%% | %s |" % (
            conv, kind, calls, f / k / 1e9, 100 * f / k / peak,
            "%.1f (%.0f%%)" % (f / p / 1e9, 100 * f / p / peak) if p else "n/a", "%.2fx" % (p / k) if p else "n/a",
            100 * calls * k / ktotal, "%.0f%%" % (100 * calls * p / ttotal) if p else "n/a"))
    out.append("| all convolutions of a step | | | %.1f (%.0f%%) | %.1f (%.0f%%) | **%.2fx** | | |" % (
        flops / ktotal / 1e9, 100 * flops / ktotal / peak, flops / ttotal / 1e9, 100 * flops / ttotal / peak,
        ttotal / ktotal))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=["lenet", "resnet"], default="lenet",
                    help="lenet (LeNet-5-BN) or resnet (./kiln resnet's network, with a table of its convolutions); "
                         "both with the MNIST epoch (default lenet)")
    ap.add_argument("--conv-batch", type=int, default=128,
                    help="resnet: batch size of the per-convolution table; 0 skips it (default 128)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating throughput rounds per side (default 3)")
    ap.add_argument("--epoch-rounds", type=int, default=1,
                    help="alternating one-epoch runs per side; 0 skips the epoch (default 1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads on both sides (default: cores)")
    ap.add_argument("--batch-sizes", help="default 64,256 (lenet), 32,128 (resnet)")
    ap.add_argument("--warmup", type=int, help="untimed steps per batch size and process (default 60 lenet, 10 resnet)")
    ap.add_argument("--steps", type=int, help="steps per timed round inside a process (default 60 lenet, 20 resnet)")
    ap.add_argument("--inner-rounds", type=int, default=3, help="timed rounds inside a process (median taken)")
    ap.add_argument("--pool", type=int, default=4096, help="random images each batch is gathered from")
    ap.add_argument("--data", default=os.environ.get("KILN_MNIST_DIR") or "/work/shared/data/mnist",
                    help="MNIST directory for the epoch (default: $KILN_MNIST_DIR)")
    ap.add_argument("--torch-passive-wait", action="store_true",
                    help="OMP_WAIT_POLICY=PASSIVE for PyTorch: on a shared, oversubscribed machine its OpenMP threads "
                         "otherwise spin at every barrier for a descheduled partner (not PyTorch's default; leave it "
                         "off on a quiet machine)")
    ap.add_argument("--out", help="table file (default bench/results/<date>-<time>-cpu-compare.md)")
    args = ap.parse_args()
    resnet = args.workload == "resnet"
    if args.batch_sizes is None:
        args.batch_sizes = "32,128" if resnet else "64,256"
    if args.warmup is None:
        args.warmup = 10 if resnet else 60
    if args.steps is None:
        args.steps = 20 if resnet else 60

    py, torch_version, tried = torch_python()
    if py is None:
        sys.stderr.write(
            "cpu-compare: PyTorch is missing: no interpreter with torch among %s.\n"
            "  Install it yourself (this script installs nothing), e.g. `apt-get install -y python3-torch` on Debian\n"
            "  or `pip install torch`, or point KILN_TORCH_PYTHON at a python that has it.\n" % (tried or ["none"]))
        return 3
    jar = os.path.join(ROOT, "examples", "target", "kiln.jar")
    if not os.path.exists(jar):
        fail("no %s: run ./kiln --help once (it builds) or mvn -B -DskipTests package" % jar)
    if args.epoch_rounds and not os.path.isdir(args.data):
        fail("no MNIST directory %s for the epoch (--data DIR, or --epoch-rounds 0)" % args.data)

    # the CPU backend pools arrays up to a quarter of the heap: at -Xmx1g the ResNet's activations at batch 128 do not
    # fit, and each step would allocate (and clear) about 180 MB afresh
    kiln_env = dict(os.environ, KILN_SKIP_BUILD="1",
                    KILN_JAVA_OPTS=(os.environ.get("KILN_JAVA_OPTS", "-Xmx3g" if resnet else "-Xmx1g")
                                    + " -Dkiln.cpu.threads=%d" % args.threads))
    torch_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.torch_passive_wait:
        torch_env["OMP_WAIT_POLICY"] = "PASSIVE"
    batches = [int(b) for b in args.batch_sizes.split(",")]
    tmp = tempfile.mkdtemp(prefix="kiln-cpu-compare-")
    load_before = os.getloadavg()
    started = datetime.datetime.now()
    commit = git_commit()  # the jar was built from this tree just before (bench/cpu-compare)

    common = ["--warmup", str(args.warmup), "--steps", str(args.steps), "--rounds", str(args.inner_rounds),
              "--pool", str(args.pool)]
    kiln_tp = {("train", b): [] for b in batches}
    kiln_tp.update({("infer", b): [] for b in batches})
    torch_tp = {k: [] for k in kiln_tp}

    def kiln_throughput(r):
        out = os.path.join(tmp, "kiln-%d.json" % r)
        log = os.path.join(tmp, "kiln-%d.txt" % r)
        code, _, _ = run_measured([os.path.join(ROOT, "kiln"), "bench", args.workload, "--device", "cpu", "--batch-sizes",
                                   args.batch_sizes, "--json", out] + common, env=kiln_env, log=log)
        doc = load_json(out)
        if code != 0 or doc is None:
            fail("kiln bench %s failed (exit %d)" % (args.workload, code), log)
        for row in doc["throughput"]:
            kiln_tp[("train", row["batch"])].append(row["train_images_per_second"])
            kiln_tp[("infer", row["batch"])].append(row["inference_images_per_second"])
        return doc

    def torch_throughput(r):
        out = os.path.join(tmp, "torch-%d.json" % r)
        log = os.path.join(tmp, "torch-%d.txt" % r)
        code, _, _ = run_measured([py, os.path.join(ROOT, "bench", "pytorch_%s.py" % args.workload), "--device", "cpu",
                                   "--threads", str(args.threads), "--throughput", args.batch_sizes, "--json", out]
                                  + common, env=torch_env, log=log)
        doc = load_json(out)
        if code != 0 or doc is None:
            fail("pytorch_%s.py --throughput failed (exit %d)" % (args.workload, code), log)
        for row in doc["throughput"]:
            torch_tp[("train", row["batch"])].append(row["train_images_per_second"])
            torch_tp[("infer", row["batch"])].append(row["inference_images_per_second"])
        return doc

    kiln_doc = torch_doc = None
    loads = [load_before[0]]
    for r in range(args.rounds):
        order = [kiln_throughput, torch_throughput] if r % 2 == 0 else [torch_throughput, kiln_throughput]
        for f in order:
            doc = f(r)
            if f is kiln_throughput:
                kiln_doc = doc
            else:
                torch_doc = doc
        loads.append(os.getloadavg()[0])
        print("cpu-compare: round %d/%d: %s" % (r + 1, args.rounds, ", ".join(
            "%s b%d Kiln %.0f / PyTorch %.0f" % (k[0], k[1], kiln_tp[k][-1], torch_tp[k][-1]) for k in kiln_tp)),
            flush=True)

    epoch = {"kiln": [], "torch": []}

    def kiln_epoch(r):
        out = os.path.join(tmp, "kiln-epoch-%d.json" % r)
        log = os.path.join(tmp, "kiln-epoch-%d.txt" % r)
        extra = ["--save", os.path.join(tmp, "kiln-resnet-%d.safetensors" % r)] if resnet else []
        code, wall, rss = run_measured([os.path.join(ROOT, "kiln"), args.workload, "--epochs", "1", "--device", "cpu",
                                        "--data", args.data, "--progress", "none", "--metrics-json", out] + extra,
                                       env=kiln_env, log=log)
        doc = load_json(out)
        if code != 0 or doc is None:
            fail("./kiln %s --epochs 1 failed (exit %d)" % (args.workload, code), log)
        epoch["kiln"].append({"ips": doc["train_images_per_second"], "wall": wall, "rss": rss,
                              "acc": doc["test_accuracy"], "train_s": doc["train_seconds"],
                              "test_s": doc.get("test_pass_seconds")})

    def torch_epoch(r):
        out = os.path.join(tmp, "torch-epoch-%d.json" % r)
        log = os.path.join(tmp, "torch-epoch-%d.txt" % r)
        if resnet:
            cmd = [py, os.path.join(ROOT, "bench", "pytorch_resnet.py"), "--epoch-data", args.data,
                   "--threads", str(args.threads), "--json", out]
        else:
            cmd = [py, os.path.join(ROOT, "bench", "pytorch_lenet.py"), "--epochs", "1", "--device", "cpu",
                   "--threads", str(args.threads), "--data", args.data, "--json", out]
        code, wall, rss = run_measured(cmd, env=torch_env, log=log)
        doc = load_json(out)
        if code != 0 or doc is None:
            fail("%s failed (exit %d)" % (os.path.basename(cmd[1]), code), log)
        epoch["torch"].append({"ips": doc["train_images_per_second"], "wall": wall, "rss": rss,
                               "acc": doc["test_accuracy"], "train_s": doc["train_seconds"],
                               "test_s": doc.get("test_pass_seconds")})

    for r in range(args.epoch_rounds):
        order = [kiln_epoch, torch_epoch] if r % 2 == 0 else [torch_epoch, kiln_epoch]
        for f in order:
            f(r)
        print("cpu-compare: epoch %d/%d: Kiln %.0f images/s %.0f MB, PyTorch %.0f images/s %.0f MB" % (
            r + 1, args.epoch_rounds, epoch["kiln"][-1]["ips"], epoch["kiln"][-1]["rss"],
            epoch["torch"][-1]["ips"], epoch["torch"][-1]["rss"]), flush=True)

    conv = None
    if resnet and args.conv_batch > 0:
        conv = conv_table(args, py, kiln_env, torch_env, tmp)
        loads.append(os.getloadavg()[0])

    load_after = os.getloadavg()
    loads.append(load_after[0])
    lines = ["# Kiln vs PyTorch on the CPU, %s (%s)" % ("ResNet (./kiln resnet)" if resnet else "LeNet-5-BN",
                                                       started.strftime("%Y-%m-%d %H:%M")), ""]
    lines.append("%s, %d cores; %d threads on both sides; Kiln %s (Java %s, %s), PyTorch %s (%s). 1-minute load average "
                 "%.1f-%.1f over the run (%.1f before, %.1f after): above the core count the machine was shared, "
                 "and an oversubscribed CPU hurts the two sides differently (PyTorch's OpenMP threads spin at "
                 "barriers), so compare ratios from quiet runs.%s" % (
                     cpu_model(), os.cpu_count(), args.threads, commit, (kiln_doc or {}).get("java", "?"),
                     kiln_env["KILN_JAVA_OPTS"].split(" -Dkiln.cpu.threads")[0],
                     torch_version, py, min(loads), max(loads), load_before[0], load_after[0],
                     " PyTorch ran with OMP_WAIT_POLICY=PASSIVE (--torch-passive-wait)." if args.torch_passive_wait
                     else ""))
    lines.append("")
    lines.append("Throughput: %d alternating rounds per side (each a fresh process: %d warm-up steps, on Kiln's side "
                 "then more until the JVM's JIT compilers are idle; median of %d x %d steps), batches gathered by "
                 "index from %d random images, SGD lr 0.1 momentum 0.9; inference in "
                 "eval mode without gradients. Cells: median of the rounds (min-max); ratio: Kiln median / PyTorch "
                 "median (range of the per-round ratios)." % (args.rounds, args.warmup, args.inner_rounds, args.steps,
                                                               args.pool))
    lines.append("")
    lines.append("| images/s | Kiln | PyTorch | Kiln / PyTorch |")
    lines.append("|---|---:|---:|---:|")
    for kind, label in (("train", "training"), ("infer", "inference")):
        for b in batches:
            k, p = kiln_tp[(kind, b)], torch_tp[(kind, b)]
            lines.append("| %s, batch %d | %s | %s | %s |" % (label, b, spread(k, "%.0f"), spread(p, "%.0f"),
                                                              ratio_cell(k, p)))
    if args.epoch_rounds:
        ke, pe = epoch["kiln"], epoch["torch"]
        lines.append("")
        if resnet:
            lines.append("One MNIST epoch end to end (`./kiln resnet --epochs 1 --device cpu` vs "
                         "`bench/pytorch_resnet.py --epoch-data DIR`, batch 128, same recipe), %d alternating run(s) "
                         "per side. Training images/s is each program's own training-loop figure; wall time is the "
                         "whole process (start, data loading, training, test pass; Kiln's also saves the model and "
                         "scores the test set a second time through a Predictor with the batch norms folded); peak "
                         "RSS is the process's maximum resident set." % args.epoch_rounds)
        else:
            lines.append("One MNIST epoch end to end (`./kiln lenet --epochs 1 --device cpu` vs "
                         "`bench/pytorch_lenet.py --epochs 1 --device cpu`, batch 64, same recipe), %d alternating "
                         "run(s) per side. Training images/s is each program's own training-loop figure; wall time is "
                         "the whole process (start, data loading, training, test pass); peak RSS is the process's "
                         "maximum resident set." % args.epoch_rounds)
        lines.append("")
        lines.append("| one epoch | Kiln | PyTorch | Kiln / PyTorch |")
        lines.append("|---|---:|---:|---:|")
        kv, pv = [e["ips"] for e in ke], [e["ips"] for e in pe]
        lines.append("| training images/s | %s | %s | %s |" % (spread(kv, "%.0f"), spread(pv, "%.0f"), ratio_cell(kv, pv)))
        kw, pw = [e["wall"] for e in ke], [e["wall"] for e in pe]
        lines.append("| process wall time, s | %s | %s | %s speed |" % (
            spread(kw, "%.1f"), spread(pw, "%.1f"), ratio_cell(pw, kw).replace("**", "")))
        kr, pr = [e["rss"] for e in ke], [e["rss"] for e in pe]
        lines.append("| peak RSS, MB | %s | %s | %.2fx memory |" % (
            spread(kr, "%.0f"), spread(pr, "%.0f"), statistics.median(kr) / statistics.median(pr)))
        kt, pt = [e["train_s"] for e in ke], [e["train_s"] for e in pe]
        lines.append("| training loop, s | %s | %s | |" % (spread(kt, "%.1f"), spread(pt, "%.1f")))
        if all(e["test_s"] is not None for e in ke + pe):
            ks, ps_ = [e["test_s"] for e in ke], [e["test_s"] for e in pe]
            lines.append("| test pass (10,000 images), s | %s | %s | |" % (spread(ks, "%.2f"), spread(ps_, "%.2f")))
        if 64 in batches and kiln_tp[("train", 64)] and torch_tp[("train", 64)]:
            # the epoch's loop adds data gathering (shuffle, normalise, copy in) and per-step host work to the steps
            ks_ = statistics.median(kiln_tp[("train", 64)])
            ps2 = statistics.median(torch_tp[("train", 64)])
            def share(loop, steps):
                v = 1 - loop / steps
                # a negative share means the load changed between the throughput rounds and the epoch
                return "%.0f%%" % (100 * v) if 0 <= v < 1 else "n/a (load changed)"
            lines.append("| share of the training loop outside the step (1 - loop images/s / steps-only images/s at "
                         "batch 64, from the throughput rounds; an estimate across phases) | %s | %s | |" % (
                             share(statistics.median(kv), ks_), share(statistics.median(pv), ps2)))
        lines.append("| test accuracy | %s | %s | |" % (
            spread([100 * e["acc"] for e in ke], "%.2f%%"), spread([100 * e["acc"] for e in pe], "%.2f%%")))
    if conv:
        lines.append("")
        lines.extend(conv)
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    out = args.out or os.path.join(ROOT, "bench", "results", started.strftime("%Y-%m-%d-%H%M") + "-cpu-compare.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        f.write(table)
    os.replace(out + ".tmp", out)
    print("cpu-compare: written to %s (raw outputs in %s)" % (os.path.relpath(out, ROOT), tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
