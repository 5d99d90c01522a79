#!/usr/bin/python3
"""ONNX files exported by PyTorch, and PyTorch's numbers for them, for the ONNX import tests.

Run from the repository root with an interpreter that has torch and onnx (Debian's python3-onnx):
    /usr/bin/python3 tools/pytorch_onnx_goldens.py

Writes under onnx/src/test/resources/onnx/ (committed; CI has no PyTorch), read by dev.kiln.onnx.OnnxImportGoldensTest:
  lenet.onnx               the batch-norm post's LeNetModel, torch.onnx.export at opset 17, dynamic batch axis,
                           TrainingMode.PRESERVE without constant folding: eval-mode BatchNormalization nodes kept,
                           initializers named as the state dict (conv1.weight, bn1.running_mean, ...)
  resnet.onnx              the ResNet of tools/kiln_torch_models.py at widths 4/8/16, exported the same way
  resnet-folded.onnx       the same ResNet exported as torch.onnx.export does by default in eval mode: each batch norm
                           after a convolution folded into it (initializers named onnx::Conv_*)
  resnet-training.onnx     the same ResNet exported with TrainingMode.TRAINING: BatchNormalization with training_mode=1
  lenet-goldens.safetensors, resnet-goldens.safetensors
                           input, labels (as float32), eval logits; for the ResNet also the training-mode forward of
                           resnet-training.onnx's weights (logits and the running statistics it leaves); one SGD step
                           (model.train(), CrossEntropyLoss, SGD lr 0.1 momentum 0.9) on the input and labels from the
                           exported weights: the loss, every parameter and running statistic after it. Tensors of
                           more than 4096 values are stored as every 7th value (step.NAME.every7).
Before export the batch norms get random affine weights and running statistics moved by three training-mode batches,
so no two initializers are equal (PyTorch's exporter would otherwise deduplicate them into Identity nodes).
onnx.checker.check_model passes on every file.
"""
import copy
import os

import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn

from goldens_common import ROOT, write_safetensors
from kiln_torch_models import LeNetModel, ResNet

OUT = os.path.join(ROOT, "onnx", "src", "test", "resources", "onnx")
LR, MOMENTUM, SAMPLE_OVER, SAMPLE_STRIDE = 0.1, 0.9, 4096, 7
SMALL_RESNET_WIDTHS = (4, 8, 16)  # instead of 16/32/64, so that the committed files stay small


def randomise_batch_norms(model, input_shape):
    """Random affine weights and running statistics moved by three training batches."""
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(0.75 + 0.5 * torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        model.train()
        for _ in range(3):
            model(torch.randn((16,) + input_shape, generator=g))
    model.eval()


def export(model, x, path, **kwargs):
    torch.onnx.export(model, x, path, opset_version=17, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **kwargs)
    onnx.checker.check_model(onnx.load(path), full_check=True)


def initializers(path):
    return {i.name: torch.from_numpy(onnx.numpy_helper.to_array(i).copy()) for i in onnx.load(path).graph.initializer}


def check_initializers_match(model, path):
    """The exported file holds the model's state under its state-dict names (what the Java side's names rely on)."""
    inits = initializers(path)
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        assert k in inits, "%s: initializer %s missing" % (path, k)
        assert torch.equal(inits[k], v), "%s: initializer %s differs from the state dict" % (path, k)


def stored(name, v, out):
    v = v.detach().to(torch.float32).contiguous()
    if v.numel() > SAMPLE_OVER:
        out[name + ".every%d" % SAMPLE_STRIDE] = v.reshape(-1)[::SAMPLE_STRIDE].clone()
    else:
        out[name] = v


def sgd_step(model, x, labels, out):
    model = copy.deepcopy(model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    opt.zero_grad()
    loss = nn.CrossEntropyLoss()(model(x), labels)
    loss.backward()
    opt.step()
    out["step.loss"] = loss.detach().reshape(1)
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            stored("step." + k, v, out)


def metadata():
    return {"torch_version": torch.__version__, "onnx_version": onnx.__version__, "opset": "17", "lr": str(LR),
            "momentum": str(MOMENTUM), "sample_stride": str(SAMPLE_STRIDE)}


def lenet():
    torch.manual_seed(0)
    model = LeNetModel()
    randomise_batch_norms(model, (1, 28, 28))
    g = torch.Generator().manual_seed(21)
    x = torch.rand((8, 1, 28, 28), generator=g) * 2 - 0.5
    labels = torch.randint(0, 10, (8,), generator=g)
    path = os.path.join(OUT, "lenet.onnx")
    export(model, x, path, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    check_initializers_match(model, path)
    out = {"input": x, "labels": labels.to(torch.float32)}
    with torch.no_grad():
        out["eval_logits"] = model(x)
    sgd_step(model, x, labels, out)
    write_safetensors(os.path.join(OUT, "lenet-goldens.safetensors"), out, metadata())


def resnet():
    torch.manual_seed(1)
    model = ResNet(widths=SMALL_RESNET_WIDTHS)
    randomise_batch_norms(model, (1, 16, 16))
    g = torch.Generator().manual_seed(22)
    x = torch.randn((8, 1, 16, 16), generator=g)
    labels = torch.randint(0, 10, (8,), generator=g)
    path = os.path.join(OUT, "resnet.onnx")
    export(model, x, path, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    check_initializers_match(model, path)
    export(model, x, os.path.join(OUT, "resnet-folded.onnx"))
    out = {"input": x, "labels": labels.to(torch.float32)}
    with torch.no_grad():
        out["eval_logits"] = model(x)
    sgd_step(model, x, labels, out)
    # Tracing a training-mode export runs a training forward: export a copy, then take the state the file holds.
    training_path = os.path.join(OUT, "resnet-training.onnx")
    export(copy.deepcopy(model), x, training_path, training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    trained = copy.deepcopy(model)
    inits = initializers(training_path)
    trained.load_state_dict({k: inits.get(k, v) for k, v in trained.state_dict().items()})
    trained.train()
    with torch.no_grad():
        out["train_logits"] = trained(x)
    for k, v in trained.state_dict().items():
        if "running_" in k:
            out["train." + k] = v
    write_safetensors(os.path.join(OUT, "resnet-goldens.safetensors"), out, metadata())


def main():
    os.makedirs(OUT, exist_ok=True)
    lenet()
    resnet()
    for f in sorted(os.listdir(OUT)):
        print("%-32s %7d bytes" % (f, os.path.getsize(os.path.join(OUT, f))))


if __name__ == "__main__":
    main()
