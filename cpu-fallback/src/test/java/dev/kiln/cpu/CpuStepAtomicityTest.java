package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.StepAtomicitySuite;

class CpuStepAtomicityTest extends StepAtomicitySuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
