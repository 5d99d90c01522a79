package dev.kiln.cuda;

import jcuda.jcudnn.cudnnTensorDescriptor;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * cuDNN tensor descriptors by shape, least recently used first out: a training step reuses the same few shapes, so
 * steady state creates none, while a service seeing many batch sizes keeps at most {@code capacity}. A descriptor is
 * host memory that cuDNN reads only during the call, so evicting one that a captured graph used is safe.
 */
final class TensorDescriptorCache<K> implements AutoCloseable {

    private final CudaApi api;
    private final LinkedHashMap<K, cudnnTensorDescriptor> entries;

    TensorDescriptorCache(CudaApi api, int capacity) {
        this.api = api;
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<K, cudnnTensorDescriptor> eldest) {
                if (size() > capacity) {
                    Descriptors.destroy(api, eldest.getValue());
                    return true;
                }
                return false;
            }
        };
    }

    cudnnTensorDescriptor get(K key, Function<K, cudnnTensorDescriptor> create) {
        cudnnTensorDescriptor d = entries.get(key);
        if (d == null) {
            d = create.apply(key);
            entries.put(key, d);
        }
        return d;
    }

    int size() {
        return entries.size();
    }

    @Override
    public void close() {
        entries.values().forEach(d -> Descriptors.destroy(api, d));
        entries.clear();
    }
}
