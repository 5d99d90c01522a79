package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.TrainerSuite;

class CpuTrainerTest extends TrainerSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
