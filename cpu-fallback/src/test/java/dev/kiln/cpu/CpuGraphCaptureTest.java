package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.GraphCaptureSuite;

class CpuGraphCaptureTest extends GraphCaptureSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
