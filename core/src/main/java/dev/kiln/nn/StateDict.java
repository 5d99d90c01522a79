package dev.kiln.nn;

import dev.kiln.core.Shapes;
import dev.kiln.core.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Host copies of a model's (or optimizer's) named tensors, in order. Values are float32 except counters such as
 * {@code num_batches_tracked}, which are int64 in PyTorch and are kept exact here as {@link DType#I64}.
 */
public final class StateDict {

    public enum DType { F32, I64 }

    /** One named value: shape, data (floats; for I64 the exact value is in {@code longValue}), and type. */
    public record Entry(int[] shape, float[] data, DType dtype, long longValue) {

        public Entry(int[] shape, float[] data, DType dtype) {
            this(shape, data, dtype, 0L);
        }

        public static Entry of(Tensor t) {
            return new Entry(t.shape(), t.toArray(), DType.F32);
        }

        /** A 0-d int64 counter. */
        public static Entry ofLong(long value) {
            return new Entry(new int[0], new float[]{value}, DType.I64, value);
        }

        public static Entry of(float[] data, int... shape) {
            if (Shapes.numel(shape) != data.length) {
                throw new IllegalArgumentException(data.length + " values for shape " + Shapes.toString(shape));
            }
            return new Entry(shape.clone(), data.clone(), DType.F32);
        }
    }

    private final Map<String, Entry> entries = new LinkedHashMap<>();

    public void put(String key, Entry e) {
        entries.put(key, e);
    }

    public Entry get(String key) {
        return entries.get(key);
    }

    public Map<String, Entry> entries() {
        return Collections.unmodifiableMap(entries);
    }

    public int size() {
        return entries.size();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("StateDict{");
        entries.forEach((k, v) -> sb.append("\n  ").append(k).append(' ').append(v.dtype()).append(Shapes.toString(v.shape())));
        return sb.append("\n}").toString();
    }
}
