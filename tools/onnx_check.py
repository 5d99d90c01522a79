#!/usr/bin/python3
"""Checks the ONNX files Kiln's exporter writes, with ONNX's own tools and with PyTorch.

Run with /usr/bin/python3 (Debian's python3-onnx 1.12 and PyTorch 1.13):

    mvn -o -q -B -pl onnx -am test -Dtest=OnnxCheckResultsTest#writeCheckFiles \
        -Dsurefire.failIfNoSpecifiedTests=false -Dkiln.onnx.checkDir=/tmp/kiln-onnx-check
    /usr/bin/python3 tools/onnx_check.py /tmp/kiln-onnx-check \
        onnx/src/test/resources/dev/kiln/onnx/onnx_check_results.json

For each NAME.onnx in the directory: onnx.checker.check_model(full_check=True), strict shape inference (whose
inferred output shape must match the graph's declared output), and an evaluation of the graph node by node with
PyTorch's functional ops on NAME.input.f32, compared with Kiln's output NAME.kiln.f32 (shapes in NAME.json). Writes
the file names, the SHA-256 of each file and the verdicts as JSON; OnnxCheckResultsTest compares the hashes with
what the exporter writes today, so CI needs no Python.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper, shape_inference


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def pads2d(a):
    p = list(a.get("pads", [0, 0, 0, 0]))
    if p[0] != p[2] or p[1] != p[3]:
        raise ValueError("asymmetric pads %s" % p)
    return (p[0], p[1])


def evaluate(model, x):
    """The graph's single output for input x, each node computed with PyTorch."""
    g = model.graph
    env = {init.name: torch.from_numpy(numpy_helper.to_array(init).copy()) for init in g.initializer}
    env[g.input[0].name] = x
    env[""] = None
    for node in g.node:
        i = [env[n] for n in node.input]
        a = attrs(node)
        op = node.op_type
        if op == "Conv":
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=tuple(a.get("strides", [1, 1])),
                         padding=pads2d(a), dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1))
        elif op == "Gemm":
            assert a.get("transB", 0) == 1 and a.get("transA", 0) == 0
            y = F.linear(i[0], i[1], i[2] if len(i) > 2 else None)
        elif op == "BatchNormalization":
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], training=False, eps=a.get("epsilon", 1e-5))
        elif op in ("Relu", "Sigmoid", "Tanh", "Identity", "Neg", "Exp", "Log", "Sqrt", "Abs", "Reciprocal"):
            y = {"Relu": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Identity": lambda t: t,
                 "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt, "Abs": torch.abs,
                 "Reciprocal": torch.reciprocal}[op](i[0])
        elif op == "Clip":
            y = torch.clamp(i[0], float(i[1]), float(i[2]))
        elif op in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"):
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Max": torch.maximum,
                 "Min": torch.minimum, "Pow": torch.pow}[op](i[0], i[1])
        elif op in ("ReduceSum", "ReduceMean"):
            axes = [int(v) for v in (i[1].tolist() if op == "ReduceSum" else a["axes"])]
            keep = bool(a.get("keepdims", 1))
            y = (torch.sum if op == "ReduceSum" else torch.mean)(i[0], dim=axes, keepdim=keep)
        elif op == "Flatten":
            y = torch.flatten(i[0], a.get("axis", 1))
        elif op == "Reshape":
            y = torch.reshape(i[0], [int(v) for v in i[1].tolist()])
        elif op == "Expand":
            y = i[0] * torch.ones([int(v) for v in i[1].tolist()], dtype=i[0].dtype)
        elif op == "MatMul":
            y = torch.matmul(i[0], i[1])
        elif op == "Concat":
            y = torch.cat(i, a["axis"])
        elif op == "Slice":
            y = torch.narrow(i[0], int(i[3][0]), int(i[1][0]), int(i[2][0]) - int(i[1][0]))
        elif op == "AveragePool":
            y = F.avg_pool2d(i[0], tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])), pads2d(a),
                             count_include_pad=bool(a.get("count_include_pad", 0)))
        elif op == "MaxPool":
            y = F.max_pool2d(i[0], tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])), pads2d(a))
        elif op == "GlobalAveragePool":
            y = F.adaptive_avg_pool2d(i[0], 1)
        elif op == "GlobalMaxPool":
            y = F.adaptive_max_pool2d(i[0], 1)
        elif op == "Resize":
            assert a.get("mode") == b"nearest" or a.get("mode") == "nearest"
            s = i[2].tolist()
            y = F.interpolate(i[0], scale_factor=(s[2], s[3]), mode="nearest")
        elif op == "Softmax":
            y = torch.softmax(i[0], a.get("axis", -1))
        else:
            raise ValueError("no PyTorch evaluation for %s" % op)
        env[node.output[0]] = y
    return env[g.output[0].name]


def declared_shape(value_info):
    return [d.dim_param if d.dim_param else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def check(directory, name):
    path = os.path.join(directory, name)
    data = open(path, "rb").read()
    result = {"file": name, "sha256": hashlib.sha256(data).hexdigest()}
    model = onnx.load_from_string(data)
    try:
        onnx.checker.check_model(model, full_check=True)
        result["checker"] = "ok"
    except Exception as e:  # the verdict is the message
        result["checker"] = "%s: %s" % (type(e).__name__, e)
    try:
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        out = inferred.graph.output[0]
        if declared_shape(out) != declared_shape(model.graph.output[0]):
            raise ValueError("inferred output shape %s, declared %s" % (declared_shape(out), declared_shape(model.graph.output[0])))
        result["shape_inference"] = "ok"
    except Exception as e:
        result["shape_inference"] = "%s: %s" % (type(e).__name__, e)
    stem = name[:-len(".onnx")]
    meta = json.load(open(os.path.join(directory, stem + ".json")))
    x = np.fromfile(os.path.join(directory, stem + ".input.f32"), dtype="<f4").reshape(meta["input_shape"])
    kiln = np.fromfile(os.path.join(directory, stem + ".kiln.f32"), dtype="<f4").reshape(meta["output_shape"])
    with torch.no_grad():
        y = evaluate(model, torch.from_numpy(x.copy())).numpy()
    if list(y.shape) != list(kiln.shape):
        raise ValueError("%s: PyTorch gave shape %s, Kiln %s" % (name, y.shape, kiln.shape))
    result["torch_max_abs_diff"] = float(np.max(np.abs(y.astype(np.float64) - kiln.astype(np.float64))))
    return result


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: onnx_check.py DIR_WITH_EXPORTED_FILES RESULTS.json")
    directory, out = sys.argv[1], sys.argv[2]
    names = sorted(n for n in os.listdir(directory) if n.endswith(".onnx"))
    if not names:
        sys.exit("%s holds no .onnx files" % directory)
    files = [check(directory, n) for n in names]
    results = {"onnx": onnx.__version__, "torch": torch.__version__.split("+")[0], "files": files}
    with open(out, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
    bad = [r["file"] for r in files if r["checker"] != "ok" or r["shape_inference"] != "ok"]
    for r in files:
        print("%-40s checker %-4s shapes %-4s torch max|diff| %.3g" % (r["file"], r["checker"][:4],
              r["shape_inference"][:4], r["torch_max_abs_diff"]))
    if bad:
        sys.exit("failed: %s" % ", ".join(bad))


if __name__ == "__main__":
    main()
