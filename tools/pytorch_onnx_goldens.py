#!/usr/bin/python3
"""ONNX files exported by PyTorch, and PyTorch's numbers for them, for the ONNX import tests.

Run from the repository root with an interpreter that has torch and onnx (Debian's python3-onnx):
    /usr/bin/python3 tools/pytorch_onnx_goldens.py

Writes under onnx/src/test/resources/onnx/ (committed; CI has no PyTorch), read by dev.kiln.onnx.OnnxImportGoldensTest:
  lenet.onnx               the batch-norm post's LeNetModel, torch.onnx.export at opset 17, dynamic batch axis,
                           TrainingMode.PRESERVE without constant folding: eval-mode BatchNormalization nodes kept,
                           initializers named as the state dict (conv1.weight, bn1.running_mean, ...)
  resnet.onnx              a small ResNet (tools/pytorch_goldens_models.py's blocks at widths 4/8/16), exported the same way
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
import json
import os
import struct

import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "onnx", "src", "test", "resources", "onnx")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
LR, MOMENTUM, SAMPLE_OVER, SAMPLE_STRIDE = 0.1, 0.9, 4096, 7


class LeNetModel(nn.Module):
    """The batch-norm post's model, as written there."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=2)
        self.bn1 = nn.BatchNorm2d(num_features=6)
        self.avg_pool1 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5, padding=0)
        self.bn2 = nn.BatchNorm2d(num_features=16)
        self.avg_pool2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.dense1 = nn.Linear(in_features=16 * 5 * 5, out_features=120)
        self.bn3 = nn.BatchNorm1d(num_features=120)
        self.dense2 = nn.Linear(in_features=120, out_features=84)
        self.bn4 = nn.BatchNorm1d(num_features=84)
        self.dense3 = nn.Linear(in_features=84, out_features=10)

    def forward(self, x):
        x = torch.sigmoid(self.bn1(self.conv1(x)))
        x = self.avg_pool1(x)
        x = torch.sigmoid(self.bn2(self.conv2(x)))
        x = self.avg_pool2(x)
        x = nn.Flatten(start_dim=1, end_dim=-1)(x)
        x = torch.sigmoid(self.bn3(self.dense1(x)))
        x = torch.sigmoid(self.bn4(self.dense2(x)))
        x = self.dense3(x)
        return x


class BasicBlock(nn.Module):
    """tools/pytorch_goldens_models.py's BasicBlock (dev.kiln.models.ResNet.BasicBlock)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """dev.kiln.models.ResNet's layout (3x3 stem, three stages of two basic blocks, global average pooling, linear)
    at widths 4/8/16 instead of 16/32/64, so the committed files stay small."""

    def __init__(self, widths=(4, 8, 16), in_channels=1, num_classes=10):
        super().__init__()
        a, b, c = widths
        self.conv1 = nn.Conv2d(in_channels, a, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(a)
        self.layer1 = nn.Sequential(BasicBlock(a, a, 1), BasicBlock(a, a, 1))
        self.layer2 = nn.Sequential(BasicBlock(a, b, 2), BasicBlock(b, b, 1))
        self.layer3 = nn.Sequential(BasicBlock(b, c, 2), BasicBlock(c, c, 1))
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


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


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for k, v in tensors.items():
        v = v.detach().contiguous()
        if v.dtype == torch.int64:
            dtype, raw = "I64", v.numpy().astype("<i8").tobytes()
        else:
            dtype, raw = "F32", v.to(torch.float32).numpy().astype("<f4").tobytes()
        header[k] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


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
    model = SmallResNet()
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
