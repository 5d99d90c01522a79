package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.BadInputSuite;

class CpuBadInputTest extends BadInputSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
