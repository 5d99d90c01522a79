package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.DataParallelSuite;

class CpuDataParallelTest extends DataParallelSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
