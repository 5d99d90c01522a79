"""bench/allreduce: N separate JVMs on 127.0.0.1 all-reduce float32 arrays through SocketCollective with the mesh,
the ring and AUTO (recursive doubling for small arrays), beside PyTorch's torch.distributed over Gloo with the same
sizes; one table: bytes each rank sent per all-reduce, their ratio to the ring's lower bound 2(N-1)/N*4P, the median
time per all-reduce and its ratio to the mesh's, and whether every rank (and every repetition) ended with the same
bits. Written to bench/results/<date>-<time>-allreduce.md with the CPU and the load (uptime) before and after."""
import argparse
import datetime
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
M2 = pathlib.Path.home() / ".m2" / "repository"
LENET = 62_158        # LeNet-5 with batch norm: parameters and batch-norm affine weights
RESNET50 = 25_557_032  # ResNet-50


def classpath():
    jars = [M2 / "org/slf4j/slf4j-api/2.0.16/slf4j-api-2.0.16.jar", M2 / "org/slf4j/slf4j-nop/2.0.16/slf4j-nop-2.0.16.jar"]
    dirs = [ROOT / "core/target/classes", ROOT / "spark/target/classes", ROOT / "spark/target/test-classes"]
    return os.pathsep.join(str(p) for p in dirs + jars)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(out):
    m = re.search(r"RESULT (.*)", out)
    if not m:
        return None
    return dict(kv.split("=", 1) for kv in m.group(1).split())


def run_group(cmds, timeout):
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in cmds]
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise SystemExit("allreduce: a member did not finish within %d s" % timeout)
        outs.append(out)
    results = [parse(o) for o in outs]
    for o, r in zip(outs, results):
        if r is None:
            raise SystemExit("allreduce: a member failed:\n" + o[-3000:])
    return results


def kiln(world, floats, algorithm, reps, warmup, encrypt):
    heap_mb = 256 + (7 if algorithm == "mesh" else 3) * floats * 4 // (1 << 20)
    folder = tempfile.mkdtemp(prefix="kiln-allreduce-")
    try:
        cmds = [["java", "-Xmx%dm" % heap_mb, "-XX:+UseSerialGC", "-cp", classpath(),
                 "dev.kiln.spark.bench.AllReduceBench", str(r), str(world), folder, str(floats), algorithm,
                 str(reps), str(warmup), str(encrypt).lower()] for r in range(world)]
        return run_group(cmds, 900)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def gloo(python, world, floats, reps, warmup):
    port = free_port()
    cmds = [[python, str(ROOT / "bench/allreduce_gloo.py"), str(r), str(world), str(port), str(floats), str(reps),
             str(warmup)] for r in range(world)]
    return run_group(cmds, 900)


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + ", %d logical CPUs" % os.cpu_count()
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ranks", default="2,4,8")
    ap.add_argument("--sizes", default="%d,%d" % (LENET, RESNET50))
    ap.add_argument("--small-reps", type=int, default=40)
    ap.add_argument("--large-reps", type=int, default=3)
    ap.add_argument("--encrypt", action="store_true", help="also the ring with AES-GCM frames")
    ap.add_argument("--python", default=None, help="a python with torch for the Gloo peer (default /usr/bin/python3)")
    ap.add_argument("--no-gloo", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    python = a.python or ("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3")
    load_before = uptime()
    rows = []
    for floats in (int(s) for s in a.sizes.split(",")):
        large = floats * 4 >= 256 * 1024
        reps, warmup = (a.large_reps, 2) if large else (a.small_reps, 30)
        algorithms = ["mesh", "ring"] + ([] if large else ["auto"])
        for world in (int(n) for n in a.ranks.split(",")):
            bound = 2 * (world - 1) / world * 4 * floats
            runs = [(alg, False) for alg in algorithms] + ([("ring", True)] if a.encrypt else [])
            results = {}
            for alg, enc in runs:
                results[(alg, enc)] = kiln(world, floats, alg, reps, warmup, enc)
                print("  %d ranks, %d floats, %s%s done" % (world, floats, alg, " (AES-GCM)" if enc else ""),
                      file=sys.stderr, flush=True)
            if not a.no_gloo:
                results[("gloo", False)] = gloo(python, world, floats, reps, warmup)
            mesh_ms = max(float(r["median_ms"]) for r in results[("mesh", False)])
            mesh_crc = results[("mesh", False)][0]["crc"]
            for (alg, enc), rs in results.items():
                sent = max(int(r["bytes"]) for r in rs)
                ms = max(float(r["median_ms"]) for r in rs)
                same = len({r["crc"] for r in rs}) == 1 and all(r["stable"] == "true" or r["stable"] == "True"
                                                              for r in rs)
                name = {"mesh": "Kiln mesh (old)", "ring": "Kiln ring", "auto": "Kiln AUTO (recursive doubling)",
                        "gloo": "PyTorch Gloo"}[alg] + (" + AES-GCM" if enc else "")
                rows.append((world, floats, name, "—" if sent < 0 else "{:,}".format(sent),
                             "—" if sent < 0 else "%.3f" % (sent / bound), "%.2f" % ms, "%.2f" % (ms / mesh_ms),
                             ("yes" if same else "NO") + (", = mesh" if rs[0]["crc"] == mesh_crc else "")))
    load_after = uptime()
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = ["# All-reduce on loopback: %s" % now.strftime("%Y-%m-%d %H:%M UTC"), "",
             "`bench/allreduce %s` — N separate JVMs (and N Python processes for Gloo) on 127.0.0.1; %s." % (
                 " ".join(sys.argv[1:]), cpu()),
             "Load before: `%s`; after: `%s`." % (load_before, load_after), "",
             "Bytes: what one rank wrote to its sockets per all-reduce (frame headers included; the largest over the "
             "ranks); bound: 2(N−1)/N·4P. Time: the median over the repetitions, the slowest rank's; "
             "relative to the mesh at the same N and size. Same bits: every rank and repetition ended with the same "
             "CRC of the result; '= mesh' when it equals the mesh's (double-precision rank-order) result.", "",
             "| ranks | floats | collective | bytes sent per rank | ÷ bound | ms per all-reduce | time ÷ mesh | same bits |",
             "|---:|---:|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append("| %d | {:,} | %s | %s | %s | %s | %s | %s |".format(r[1]) % (r[0], r[2], r[3], r[4], r[5], r[6],
                                                                                  r[7]))
    text = "\n".join(lines) + "\n"
    print(text)
    out = pathlib.Path(a.out) if a.out else ROOT / "bench/results" / (now.strftime("%Y-%m-%d-%H%M") + "-allreduce.md")
    out.write_text(text)
    print("written to", out, file=sys.stderr)


if __name__ == "__main__":
    main()
