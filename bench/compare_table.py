#!/usr/bin/env python3
"""One table from `kiln bench lenet --json` (eager and --graphs) and `pytorch_lenet.py --throughput --json`.

  python3 bench/compare_table.py KILN_EAGER.json KILN_GRAPHS.json PYTORCH.json [--date YYYY-MM-DD] > table.md
  python3 bench/compare_table.py --bn KILN_BN.json PYTORCH_BN.json [--date YYYY-MM-DD]   # `kiln bench bn` vs pytorch_bn.py

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


def bn_table(kiln_doc, torch_doc, date=None):
    """Batch norm alone: time per op on both sides, Kiln/PyTorch time (the target is <= 1.1) and % of copy bandwidth."""
    kr = {r["op"]: r for r in (kiln_doc or {}).get("rows", [])}
    pr = {r["op"]: r for r in (torch_doc or {}).get("rows", [])}
    lines = []
    if date:
        lines.append("# Batch norm alone, Kiln vs PyTorch (%s)" % date)
        lines.append("")
    for name, doc in (("Kiln", kiln_doc), ("PyTorch", torch_doc)):
        if doc:
            desc = doc.get("backend") or doc.get("device_name") or doc.get("device")
            extra = doc.get("torch_version") or doc.get("kiln_version") or ""
            lines.append("- %s: %s %s, shape %s" % (name, desc, extra, doc.get("shape")))
    lines.append("")
    lines.append("| op | Kiln ms | PyTorch ms | Kiln time / PyTorch time | Kiln GB/s | Kiln % of copy | PyTorch GB/s"
                 " | PyTorch % of copy |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for op in list(kr) + [o for o in pr if o not in kr]:
        k, p = kr.get(op, {}), pr.get(op, {})
        kf, pf = k.get("fraction_of_copy"), p.get("fraction_of_copy")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            op, cell(k.get("ms"), "{:.3f}"), cell(p.get("ms"), "{:.3f}"), cell(ratio(k.get("ms"), p.get("ms")), "{:.2f}x"),
            cell(k.get("gb_per_s"), "{:.0f}"), cell(None if kf is None else 100 * kf, "{:.0f}%"),
            cell(p.get("gb_per_s"), "{:.0f}"), cell(None if pf is None else 100 * pf, "{:.0f}%")))
    return "\n".join(lines) + "\n"


def main(argv):
    date = None
    if "--date" in argv:
        i = argv.index("--date")
        date = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if argv and argv[0] == "--bn":
        if len(argv) != 3:
            sys.stderr.write(__doc__)
            return 2
        sys.stdout.write(bn_table(load(argv[1]), load(argv[2]), date))
        return 0
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    sys.stdout.write(table(load(argv[0]), load(argv[1]), load(argv[2]), date))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
