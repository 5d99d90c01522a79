#!/usr/bin/env python3
"""One table from `kiln bench lenet --json` (eager and --graphs) and `pytorch_lenet.py --throughput --json`.

  python3 bench/compare_table.py KILN_EAGER.json KILN_GRAPHS.json PYTORCH.json [--date YYYY-MM-DD] > table.md

Standard library only (runs where torch does, and here in tests). Missing inputs become "n/a" cells.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def by_batch(doc):
    return {row["batch"]: row for row in (doc or {}).get("throughput", [])}


def cell(v, fmt="{:,.0f}"):
    return "n/a" if v is None else fmt.format(v)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def table(kiln_eager, kiln_graphs, torch_doc, date=None):
    ke, kg, pt = by_batch(kiln_eager), by_batch(kiln_graphs), by_batch(torch_doc)
    lines = []
    if date:
        lines.append("# LeNet-BN training throughput, Kiln vs PyTorch (%s)" % date)
        lines.append("")
    for name, doc in (("Kiln eager", kiln_eager), ("Kiln graphs", kiln_graphs), ("PyTorch", torch_doc)):
        if doc:
            desc = doc.get("backend") or doc.get("device_name") or doc.get("device")
            extra = doc.get("torch_version") or doc.get("kiln_version") or ""
            lines.append("- %s: %s %s" % (name, desc, extra))
    lines.append("")
    lines.append("| batch | Kiln eager train img/s | Kiln graphs train img/s | PyTorch eager train img/s | Kiln eager / PyTorch"
                 " | Kiln graphs / PyTorch eager | PyTorch graphed img/s | Kiln infer img/s | PyTorch infer img/s"
                 " | infer ratio |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in sorted(set(ke) | set(kg) | set(pt)):
        k = ke.get(b, {}).get("train_images_per_second")
        g = kg.get(b, {}).get("train_images_per_second")
        p = pt.get(b, {}).get("train_images_per_second")
        pg = pt.get(b, {}).get("graphed_train_images_per_second")
        ki = ke.get(b, {}).get("inference_images_per_second")
        pi = pt.get(b, {}).get("inference_images_per_second")
        mode = kg.get(b, {}).get("step", "")
        gcell = cell(g) + ("" if not mode or mode == "graphed" else " (%s)" % mode.split(" ")[0])
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            b, cell(k), gcell, cell(p), cell(ratio(k, p), "{:.2f}x"), cell(ratio(g, p), "{:.2f}x"), cell(pg),
            cell(ki), cell(pi), cell(ratio(ki, pi), "{:.2f}x")))
    return "\n".join(lines) + "\n"


def main(argv):
    date = None
    if "--date" in argv:
        i = argv.index("--date")
        date = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    sys.stdout.write(table(load(argv[0]), load(argv[1]), load(argv[2]), date))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
