#!/usr/bin/env python3
"""Where a `./kiln lenet` run spends CPU time, epoch by epoch: the training thread, the CPU backend's workers, the
JIT compiler threads and everything else, read from /proc/<pid>/task/*/stat while the run goes on (Linux only).

    python3 bench/epoch_cpu.py --data DIR [--epochs 2] [--runs 3] [--java-opts "..."]

The first epoch of a fresh JVM pays the JIT: its compiler threads' CPU time and the slower steps before the kernels
are compiled. The second epoch runs compiled code, so its CPU time is the steady-state cost of the same work.
Epoch windows run from the trainer's "epoch N/M" line to its "epoch N: ..." line (the test pass included).
"""
import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = ("training thread", "cpu workers", "jit compilers", "other")


def group(thread_name):
    if "Compiler" in thread_name:
        return "jit compilers"
    if thread_name == "java":  # the launcher's main thread keeps the process name
        return "training thread"
    if thread_name.startswith("kiln-cpu"):
        return "cpu workers"
    return "other"


def snapshot(pid, hz):
    cpu = dict.fromkeys(GROUPS, 0.0)
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(task + "/comm") as f:
                name = f.read().strip()
            with open(task + "/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended between the listing and the read
        cpu[group(name)] += (int(fields[11]) + int(fields[12])) / hz
    return cpu


def one_run(args):
    env = dict(os.environ, KILN_JAVA_OPTS=args.java_opts)
    cmd = [os.path.join(ROOT, "kiln"), "lenet", "--epochs", str(args.epochs), "--device", "cpu",
           "--data", args.data, "--progress", "log"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    hz = os.sysconf("SC_CLK_TCK")
    lines, samples = [], []
    t0 = time.monotonic()

    def read_output():
        for line in proc.stdout:
            lines.append((time.monotonic() - t0, line.rstrip("\n")))

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    java_pid = None
    while proc.poll() is None:
        if java_pid is None:
            found = subprocess.run(["pgrep", "-s", str(proc.pid), "java"], capture_output=True, text=True).stdout
            java_pid = found.split()[0] if found.strip() else None
        if java_pid:
            samples.append((time.monotonic() - t0, snapshot(java_pid, hz)))
        time.sleep(args.interval)
    reader.join()
    if proc.returncode != 0:
        sys.exit("epoch_cpu: kiln lenet failed:\n" + "\n".join(line for _, line in lines[-20:]))

    def cpu_at(t):
        best = None
        for ts, snap in samples:
            if ts <= t:
                best = snap
        return best or dict.fromkeys(GROUPS, 0.0)

    starts = [t for t, line in lines if re.search(r"epoch \d+/\d+: \d+ batches", line)]
    ends = [(t, line) for t, line in lines if re.search(r"epoch \d+: train loss", line)]
    epochs = []
    for start, (end, line) in zip(starts, ends):
        a, b = cpu_at(start), cpu_at(end)
        loop = re.search(r"\| ([\d.]+) s, (\d+) images/s", line)
        epochs.append({"loop_s": float(loop.group(1)), "images_s": int(loop.group(2)), "window_s": end - start,
                       **{g: b[g] - a[g] for g in GROUPS}})
    return epochs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="directory with the four MNIST files")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--runs", type=int, default=3, help="fresh processes; the table shows medians")
    p.add_argument("--java-opts", default="-Xmx1g", help="KILN_JAVA_OPTS for the runs (default: -Xmx1g)")
    p.add_argument("--interval", type=float, default=0.05, help="seconds between /proc samples")
    args = p.parse_args()
    if not os.path.isdir("/proc/self/task"):
        sys.exit("epoch_cpu: needs Linux's /proc")
    runs = []
    for r in range(args.runs):
        runs.append(one_run(args))
        print(f"epoch_cpu: run {r + 1}/{args.runs}: " + ", ".join(
            f"epoch {i + 1} {e['loop_s']} s" for i, e in enumerate(runs[-1])), file=sys.stderr)
    print(f"{os.cpu_count()} CPUs; KILN_JAVA_OPTS={args.java_opts!r}; medians of {args.runs} run(s); CPU seconds "
          "per epoch window (training loop and test pass)\n")
    print("| epoch | training loop, s | images/s | window, s | " + " | ".join(GROUPS) + " | all threads |")
    print("|---|---:|---:|---:|" + "---:|" * (len(GROUPS) + 1))
    for i in range(min(len(run) for run in runs)):
        med = {k: statistics.median(run[i][k] for run in runs) for k in runs[0][i]}
        total = statistics.median(sum(run[i][g] for g in GROUPS) for run in runs)
        print(f"| {i + 1} | {med['loop_s']:.1f} | {med['images_s']:.0f} | {med['window_s']:.2f} | "
              + " | ".join(f"{med[g]:.2f}" for g in GROUPS) + f" | {total:.2f} |")


if __name__ == "__main__":
    main()
