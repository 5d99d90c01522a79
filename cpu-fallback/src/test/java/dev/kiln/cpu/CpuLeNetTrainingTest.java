package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.LeNetTrainingSuite;

class CpuLeNetTrainingTest extends LeNetTrainingSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
