package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.core.Generator;
import dev.kiln.distributed.Collective;
import dev.kiln.models.LeNet5;
import dev.kiln.nn.Module;

import java.io.Serializable;

/**
 * Builds one model replica inside a barrier task. {@code syncGroup} is the task group when synchronised batch
 * norm was asked for, else null. Serializable: it travels to the executors with the job.
 */
@FunctionalInterface
public interface ReplicaFactory extends Serializable {

    Module create(Device device, Generator generator, Collective syncGroup);

    /** {@link LeNet5}, with {@code SyncBatchNorm} layers when a sync group is given. */
    static ReplicaFactory lenet5() {
        return LeNet5::new;
    }
}
