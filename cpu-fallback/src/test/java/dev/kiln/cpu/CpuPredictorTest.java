package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.PredictorSuite;

class CpuPredictorTest extends PredictorSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
