package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.LayersSuite;

class CpuLayersTest extends LayersSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
