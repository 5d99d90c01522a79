package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.AutogradSuite;

class CpuAutogradTest extends AutogradSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
