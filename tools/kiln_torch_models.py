"""The PyTorch twins of Kiln's built-in models, defined once for the goldens scripts (tools/) and the PyTorch peers of
the benchmarks (bench/): the same layers, built in the same order, under the same state-dict names, so that a Kiln
model and its twin can be compared tensor by tensor (with Generator.pytorch(s) on the Kiln side, even their initial
weights after torch.manual_seed(s)).

  LeNetModel   the batch-norm post's model, verbatim: dev.kiln.models.LeNet5
  LeNet5       LeNetModel with a forward of plain functional calls, for timing (same layers, same numbers)
  BasicBlock, ResNet   dev.kiln.models.ResNet: 3x3 stem, three stages of two basic blocks, global average pooling,
               linear; widths 16/32/64 by default (the ONNX goldens use smaller ones to keep their files small)

From bench/, put tools/ on the path relative to the script's own file, so that it runs from any directory:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tools"))
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNetModel(nn.Module):
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
        x = F.sigmoid(self.bn1(self.conv1(x)))  # [B, 1, 28, 28] -> [B, 6, 28, 28]
        x = self.avg_pool1(x)  # [B, 6, 28, 28] -> [B, 6, 14, 14]
        x = F.sigmoid(self.bn2(self.conv2(x)))  # [B, 6, 14, 14] -> [B, 16, 10, 10]
        x = self.avg_pool2(x)  # [B, 16, 10, 10] -> [B, 16, 5, 5]
        x = nn.Flatten(start_dim=1, end_dim=-1)(x)  # [B, 16, 5, 5] -> [B, 400]
        x = F.sigmoid(self.bn3(self.dense1(x)))  # [B, 400] -> [B, 120]
        x = F.sigmoid(self.bn4(self.dense2(x)))  # [B, 120] -> [B, 84]
        x = self.dense3(x)  # [B, 120] -> [B, 10]
        return x


class LeNet5(LeNetModel):
    """The post's forward builds an nn.Flatten on every call and pools through module calls: some 20 us of Python per
    forward, which a timing peer should not carry. The operations, and so the numbers, are the same."""

    def forward(self, x):
        x = F.avg_pool2d(torch.sigmoid(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(torch.sigmoid(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = torch.sigmoid(self.bn3(self.dense1(x)))
        x = torch.sigmoid(self.bn4(self.dense2(x)))
        return self.dense3(x)


class BasicBlock(nn.Module):
    """dev.kiln.models.ResNet.BasicBlock: two 3x3 convolutions with batch norm; a 1x1 convolution with batch norm as
    the shortcut when the shape changes."""

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
        # conv2 and bn2 in separate statements, so that relu's output is freed before bn2 allocates (as an nn.Sequential
        # frees it): bench/pytorch_memory.py measures the peak of a no-grad forward.
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        out = self.bn2(out)
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """dev.kiln.models.ResNet: 3x3 stem, stages of two basic blocks at widths a/b/c (stride 1, 2, 2), global average
    pooling, linear. At the default 16/32/64 on 1x28x28 inputs: 174,970 parameters, 15 batch norms."""

    def __init__(self, in_channels=1, num_classes=10, widths=(16, 32, 64)):
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

    def sequential(self):
        """The same layers (shared, not copied) as one flat nn.Sequential, for measuring peak memory: forward() holds
        the stem's output while layer1 runs both its blocks (a caller holds its argument), the flat sequence drops each
        activation once the next block has it. The same numbers as forward()."""
        return nn.Sequential(self.conv1, self.bn1, nn.ReLU(), *self.layer1, *self.layer2, *self.layer3,
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), self.fc)
