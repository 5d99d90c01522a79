#!/usr/bin/env python3
"""Peak memory of one pass, Kiln beside PyTorch, in one run and one table: LeNet-5-BN and the small ResNet of
`dev.kiln.models.ResNet` (3x3 stem, three stages of two basic blocks at 16/32/64 channels, 1x1-conv shortcuts, global
average pooling, 174,970 parameters, 15 batch norms; on the PyTorch side the models of tools/kiln_torch_models.py), a
training step (forward, backward, SGD with momentum) at batch 128 and a no-grad eval forward at batch 1,000, each the
first pass of a fresh process on random data.

Kiln (`kiln bench memory`, once with eager release and once with -Dkiln.tensors.eagerRelease=false, the scope-only
lifetimes) reports the peak of live tensor storage and whether the pass runs at -Xmx1g; its "peak heap" is the
smallest -Xmx (in steps of --step MB) at which the pass completes, found by bisection: the heap the pass needs, JVM
bookkeeping and model included (the used-heap high-water mark of a JVM measures how lazily it collects, not what a
pass needs). PyTorch's figures are the process's peak resident set above its resident set before the pass (VmHWM
after resetting it through /proc/self/clear_refs) and tracemalloc's peak (Python-level allocations only: tensor
storage is not traced). Ratios are Kiln / PyTorch.

    /usr/bin/python3 bench/pytorch_memory.py            # everything, writes bench/results/<date>-<time>-memory.md
    /usr/bin/python3 bench/pytorch_memory.py --case resnet-eval --torch   # one PyTorch case, JSON on stdout

The orchestrator needs only the standard library; the PyTorch side runs under the interpreter that has torch
($KILN_TORCH_PYTHON, else /usr/bin/python3). Nothing is installed.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = ["lenet-train", "lenet-eval", "resnet-train", "resnet-eval"]


# ---------------------------------------------------------------------------------------------------- PyTorch side

def torch_case(case):
    import resource  # noqa: F401  (Linux only, like /proc below)
    import tracemalloc
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from kiln_torch_models import LeNet5, ResNet  # the twins of dev.kiln.models' LeNet5 and ResNet

    torch.set_num_threads(1)
    torch.manual_seed(0)

    model_name, pass_name = case.split("-")
    n = 128 if pass_name == "train" else 1000
    net = LeNet5() if model_name == "lenet" else ResNet().sequential()
    sgd = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
        return -1

    rss_before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    tracemalloc.start()
    if pass_name == "train":
        net.train()
        sgd.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        sgd.step()
        value = float(loss)
    else:
        net.eval()
        with torch.no_grad():
            value = float(net(x).sum())
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"case": case, "batch": n, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in net.parameters()), "value": value,
            "rss_peak_bytes": status("VmHWM:") - rss_before, "rss_before_bytes": rss_before,
            "tracemalloc_peak_bytes": traced_peak}


# ---------------------------------------------------------------------------------------------------- orchestration

def kiln(case, xmx_mb, eager, threads):
    model, pass_name = case.split("-")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        opts = f"-Xmx{xmx_mb}m -Dkiln.cpu.threads={threads} -Dkiln.tensors.eagerRelease={'true' if eager else 'false'}"
        env = dict(os.environ, KILN_JAVA_OPTS=opts, KILN_SKIP_BUILD="1")
        r = subprocess.run([os.path.join(ROOT, "kiln"), "bench", "memory", "--device", "cpu", "--model", model,
                            "--pass", pass_name, "--json", out], cwd=ROOT, env=env, capture_output=True, text=True)
        try:
            with open(out) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res = {"error": (r.stdout + r.stderr).strip().splitlines()[-1:] or ["no output"]}
        res["ok"] = r.returncode == 0 and "error" not in res
        return res


def min_heap_mb(case, eager, threads, lo, hi, step):
    """Smallest -Xmx (MB, multiple of step) in (lo, hi] at which the pass completes, or None if not even at hi."""
    if not kiln(case, hi, eager, threads)["ok"]:
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if kiln(case, mid, eager, threads)["ok"]:
            hi = mid
        else:
            lo = mid
    return hi


def cuda_standin_classpath():
    """The class path of the CUDA module's tests (for the checking stand-in), or None when they are not built."""
    tests = os.path.join(ROOT, "cuda", "target", "test-classes")
    if not os.path.isdir(tests):
        return None
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cp.txt")
        r = subprocess.run(["mvn", "-o", "-q", "-B", "-pl", "cuda", "dependency:build-classpath",
                            "-Dmdep.includeScope=test", f"-Dmdep.outputFile={out}"], cwd=ROOT, capture_output=True)
        if r.returncode != 0 or not os.path.exists(out):
            return None
        with open(out) as f:
            third_party = [e for e in f.read().strip().split(":") if e and "/dev/kiln/" not in e]
    own = [os.path.join(ROOT, m, "target", d) for m in ("core", "cuda") for d in ("classes", "test-classes")]
    return ":".join(own + third_party)


def cuda_standin(classpath, case, eager):
    """The caching allocator's peak bytes for the pass on the checking stand-in (no GPU), or None."""
    if not classpath:
        return None
    model, pass_name = case.split("-")
    batch = "128" if pass_name == "train" else "1000"
    r = subprocess.run(["java", "-Xmx1g", f"-Dkiln.tensors.eagerRelease={'true' if eager else 'false'}", "-cp",
                        classpath, "dev.kiln.cuda.CheckedCudaMemoryBench", model, pass_name, batch],
                       cwd=ROOT, capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)["allocator_peak_bytes"]
    return None


def mb(b):
    return "-" if b is None or b < 0 else f"{b / 1e6:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=CASES, help="one PyTorch case (with --torch), JSON on stdout")
    ap.add_argument("--torch", action="store_true", help="run --case under PyTorch in this process")
    ap.add_argument("--cases", default=",".join(CASES), help="cases to run (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of both (default: 1)")
    ap.add_argument("--step", type=int, default=16, help="bisection step of Kiln's heap, MB (default: 16)")
    ap.add_argument("--no-bisect-before", action="store_true", help="skip the heap bisection of scope-only lifetimes")
    ap.add_argument("--out", help="results file (default: bench/results/<date>-<time>-memory.md)")
    args = ap.parse_args()
    if args.torch:
        if not args.case:
            ap.error("--torch needs --case")
        print(json.dumps(torch_case(args.case)))
        return 0
    py = os.environ.get("KILN_TORCH_PYTHON", "/usr/bin/python3")
    subprocess.run([os.path.join(ROOT, "kiln"), "--version"], cwd=ROOT, check=True, capture_output=True)
    rows = []
    standin = cuda_standin_classpath()
    for case in args.cases.split(","):
        r = subprocess.run([py, os.path.abspath(__file__), "--case", case, "--torch"], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 2
        pt = json.loads(r.stdout)
        pt["threads"] = args.threads
        before = kiln(case, 1024, False, args.threads)
        after = kiln(case, 1024, True, args.threads)
        heap_after = min_heap_mb(case, True, args.threads, 16, 1024, args.step)
        heap_before = None if args.no_bisect_before else min_heap_mb(case, False, args.threads, 16, 2048, 4 * args.step)
        cuda = (cuda_standin(standin, case, False), cuda_standin(standin, case, True))
        rows.append((case, pt, before, after, heap_before, heap_after, cuda))
        print(f"{case}: done", file=sys.stderr, flush=True)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    lines = [
        f"# Peak memory of one pass: Kiln vs PyTorch ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; load average "
        f"at the end {load} (shared machine). Kiln CPU backend and PyTorch {rows[0][1]['torch']} CPU, "
        f"{args.threads} thread(s) each; random data; each pass the first of a fresh process.",
        "Command: `/usr/bin/python3 bench/pytorch_memory.py`.",
        "",
        "- *tensors*: Kiln's peak of live tensor storage during the pass (`Device.tensorMemory()`), before = scope-only "
        "lifetimes (`-Dkiln.tensors.eagerRelease=false`), after = eager release.",
        "- *-Xmx1g*: whether the pass completes with a 1 GiB heap.",
        f"- *heap*: the smallest -Xmx (step {args.step} MiB after, {4 * args.step} MiB before) at which the pass "
        "completes: the heap it needs, JVM and model included; *pass heap* subtracts the heap in use before the pass "
        "(after a GC: the JVM's own objects, the model, the batch), the counterpart of PyTorch's RSS increase. MB = 10^6 bytes, MiB = 2^20.",
        "- *PyTorch RSS*: peak resident set above the resident set before the pass; *tracemalloc*: Python-level peak.",
        "- *CUDA allocator*: the caching allocator's peak in-use bytes (2 MiB size classes above 1 MiB, cuDNN workspace "
        "included) for the same pass through the CUDA backend's host code on the checking stand-in (no GPU; "
        "`dev.kiln.cuda.CheckedCudaMemoryBench`, needs the cuda module's tests built).",
        "",
        "| pass | batch | tensors before MB | tensors after MB | -Xmx1g before | -Xmx1g after | heap before MB | "
        "heap after MB | pass heap after MB | PyTorch RSS MB | PyTorch tracemalloc MB | pass heap after / PyTorch RSS | "
        "CUDA allocator before MB | CUDA allocator after MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, pt, before, after, hb, ha, cuda in rows:
        own = after.get("heap_before_bytes")
        pass_heap = ha * 1048576 - own if ha and own is not None else None
        ratio = f"{pass_heap / pt['rss_peak_bytes']:.2f}" if pass_heap and pt["rss_peak_bytes"] > 0 else "-"
        lines.append(f"| {case} | {pt['batch']} | {mb(before.get('tensor_peak_bytes'))} | "
                     f"{mb(after.get('tensor_peak_bytes'))} | {'runs' if before['ok'] else 'OOM'} | "
                     f"{'runs' if after['ok'] else 'OOM'} | {hb if hb else '> 2048'} | {ha if ha else '> 1024'} | {mb(pass_heap)} | "
                     f"{mb(pt['rss_peak_bytes'])} | {mb(pt['tracemalloc_peak_bytes'])} | {ratio} | {mb(cuda[0])} | {mb(cuda[1])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = args.out or os.path.join(ROOT, "bench", "results",
                                   f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d-%H%M}-memory.md")
    with open(out, "w") as f:
        f.write(text)
    print(f"written to {os.path.relpath(out, ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
