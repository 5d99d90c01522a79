package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.PyTorchGoldensSuite;

class CpuPyTorchGoldensTest extends PyTorchGoldensSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
