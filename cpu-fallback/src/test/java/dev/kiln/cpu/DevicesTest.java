package dev.kiln.cpu;

import dev.kiln.core.Device;
import dev.kiln.core.Devices;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DevicesTest {

    @Test
    @DisplayName("ServiceLoader finds the CPU backend; auto picks it here; one backend per device name")
    void discovery() {
        try (Devices devices = new Devices(getClass().getClassLoader(), Map.of("threads", "1"))) {
            assertTrue(devices.backendNames().contains("cpu"));
            Device cpu = devices.get("cpu");
            assertSame(cpu, devices.get("cpu"));
            assertTrue(cpu.backend().description().contains("1"), cpu.backend().description());
            assertNotSame(Device.cpu().backend(), cpu.backend(), "a registry of its own creates its own backends");
        }
    }

    @Test
    @DisplayName("kiln.device overrides auto; unknown names list the backends found")
    void overrideAndErrors() {
        try (Devices devices = new Devices(getClass().getClassLoader(), Map.of())) {
            String before = System.getProperty("kiln.device");
            System.setProperty("kiln.device", "cpu");
            try {
                assertEquals("cpu", devices.get("auto").name());
            } finally {
                if (before == null) {
                    System.clearProperty("kiln.device");
                } else {
                    System.setProperty("kiln.device", before);
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> devices.get("tpu"));
            assertTrue(e.getMessage().contains("tpu") && e.getMessage().contains("cpu"), e.getMessage());
        }
    }
}
