package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.suites.UserDataSuite;

class CpuUserDataTest extends UserDataSuite {
    @Override
    protected Device device() {
        return Device.cpu();
    }
}
