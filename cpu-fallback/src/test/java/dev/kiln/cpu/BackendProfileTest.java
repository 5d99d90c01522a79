package dev.kiln.cpu;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProfile;
import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.core.Tensor;
import dev.kiln.core.TensorScope;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackendProfileTest {

    @Test
    void countsEveryOpOfATrainingStepAndPassesErrorsThrough() {
        BackendProfile profile = new BackendProfile();
        Backend profiled = BackendProfile.wrap(Device.cpu().backend(), profile);
        Device device = Device.of("cpu-profiled", profiled);
        Generator g = new Generator(3);
        try (LeNet5 net = new LeNet5(device, new Generator(1));
             SGD sgd = new SGD(net.parameters(), 0.1f, 0.9f, 0f, false, 0f);
             Tensor x = Tensor.randn(device, g, 8, 1, 28, 28);
             Tensor y = Tensor.of(device, new float[] {0, 1, 2, 3, 4, 5, 6, 7}, 8)) {
            profile.reset();
            try (TensorScope s = TensorScope.open()) {
                sgd.zeroGrad();
                Tensor loss = new CrossEntropyLoss().forward(net.forward(x), y);
                loss.backward();
                sgd.step();
            }
            Map<String, Long> calls = profile.snapshot().stream()
                    .collect(Collectors.toMap(BackendProfile.OpStats::op, BackendProfile.OpStats::calls));
            assertEquals(2L, calls.get("conv2dForward"), calls.toString());
            assertEquals(4L, calls.get("batchNormForwardTraining"), calls.toString());
            assertEquals(4L, calls.get("batchNormBackward"), calls.toString());
            assertEquals(1L, calls.get("sgdStepMany"), "all 18 parameters in one call: " + calls);
            assertTrue(profile.snapshot().stream().allMatch(o -> o.nanos() >= 0 && o.microsPerCall() >= 0));
            profile.reset();
            assertTrue(profile.snapshot().isEmpty());
        }
        try (dev.kiln.backend.Buffer in = profiled.allocate(5); dev.kiln.backend.Buffer out = profiled.allocate(4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> profiled.activationForward(dev.kiln.backend.Activation.RELU, in, out, 5));
            assertTrue(e.getMessage().contains("activationForward"), e.getMessage());
        }
        assertEquals(1L, profile.snapshot().stream().filter(o -> o.op().equals("activationForward")).count());
    }
}
