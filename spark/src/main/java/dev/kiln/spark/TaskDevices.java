package dev.kiln.spark;

import dev.kiln.core.Device;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;

/**
 * Which Kiln device a Spark task uses. A task that Spark's resource scheduling gave a GPU
 * ({@code spark.task.resource.gpu.amount} with {@code spark.executor.resource.gpu.amount} and a discovery script)
 * finds its address in {@link TaskContext#resources()} under {@code "gpu"}; Kiln then uses {@code cuda:<address>},
 * so tasks sharing an executor never share a GPU by accident. Without a GPU resource the configured fallback
 * applies ("auto", "cpu", ...).
 */
public final class TaskDevices {

    private static final Logger LOG = LoggerFactory.getLogger(TaskDevices.class);

    /** Spark's resource name for GPUs. */
    public static final String GPU = "gpu";

    private TaskDevices() {
    }

    /**
     * The device spec for a task's resources: {@code cuda:N} for the first GPU address Spark assigned, else
     * {@code fallback}.
     *
     * @throws IllegalArgumentException when the assigned address is not a CUDA device index
     */
    public static String deviceSpec(Map<String, ResourceInformation> resources, String fallback) {
        ResourceInformation gpu = resources == null ? null : resources.get(GPU);
        if (gpu == null || gpu.addresses().length == 0) {
            return fallback;
        }
        String address = gpu.addresses()[0].trim();
        if (!address.matches("\\d+")) {
            throw new IllegalArgumentException("Spark assigned GPU address '" + address + "' to this task; Kiln needs a"
                    + " CUDA device index (check the GPU discovery script: it must list indices such as \"0\", \"1\")");
        }
        if (gpu.addresses().length > 1) {
            LOG.info("task was given GPUs {}; Kiln uses the first, cuda:{}", String.join(",", gpu.addresses()), address);
        }
        return "cuda:" + address;
    }

    /** The device spec of the task running on this thread (the fallback outside a task). */
    public static String deviceSpec(String fallback) {
        TaskContext ctx = TaskContext.get();
        return ctx == null ? fallback : deviceSpec(ctx.resourcesJMap(), fallback);
    }

    /** The device of the task running on this thread. */
    public static Device device(String fallback) {
        return Device.of(deviceSpec(fallback));
    }
}
