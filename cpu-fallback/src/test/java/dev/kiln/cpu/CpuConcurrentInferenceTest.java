package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.ConcurrentInferenceSuite;

class CpuConcurrentInferenceTest extends ConcurrentInferenceSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
