package dev.kiln.spark;

import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A task's GPU assignment, as Spark hands it to the task, becomes Kiln's CUDA device index. */
class TaskDevicesTest {

    @Test
    void theAssignedGpuAddressIsTheCudaIndex() {
        Map<String, ResourceInformation> one = Map.of("gpu", new ResourceInformation("gpu", new String[]{"3"}));
        assertEquals("cuda:3", TaskDevices.deviceSpec(one, "auto"));
        Map<String, ResourceInformation> two = Map.of("gpu", new ResourceInformation("gpu", new String[]{"1", "2"}));
        assertEquals("cuda:1", TaskDevices.deviceSpec(two, "auto"));
    }

    @Test
    void withoutAGpuTheFallbackApplies() {
        assertEquals("cpu", TaskDevices.deviceSpec(Map.of(), "cpu"));
        assertEquals("auto", TaskDevices.deviceSpec(
                Map.of("fpga", new ResourceInformation("fpga", new String[]{"0"})), "auto"));
        assertEquals("cpu", TaskDevices.deviceSpec(Map.of("gpu", new ResourceInformation("gpu", new String[0])), "cpu"));
        // on the driver, outside any task
        assertEquals("cpu", TaskDevices.deviceSpec("cpu"));
    }

    @Test
    void anAddressThatIsNoIndexIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TaskDevices.deviceSpec(
                Map.of("gpu", new ResourceInformation("gpu", new String[]{"GPU-8f2a"})), "auto"));
        assertTrue(e.getMessage().contains("GPU-8f2a"), e.getMessage());
    }
}
