package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.BatchNormSemanticsSuite;

class CpuBatchNormSemanticsTest extends BatchNormSemanticsSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
