package dev.kiln.optim;

import dev.kiln.core.Tensor;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A set of parameters with hyper-parameters of its own, PyTorch's {@code {'params': ..., 'weight_decay': 0}}:
 * whatever a group leaves unset comes from the optimizer's defaults. Each optimizer accepts the options it has
 * ({@code lr} and {@code weightDecay} everywhere; {@code momentum}, {@code dampening}, {@code nesterov} for SGD;
 * {@code betas}, {@code eps} for Adam and AdamW) and refuses the others by name.
 *
 * <pre>{@code
 * SGD sgd = SGD.builder().lr(0.1f).momentum(0.9f).weightDecay(5e-4f)
 *         .group(ParamGroup.of(convAndLinearWeights))
 *         .group(ParamGroup.of(batchNormAndBiasParams).weightDecay(0f))
 *         .build();
 * }</pre>
 */
public final class ParamGroup {

    private final List<Tensor> params;
    private final Map<String, Object> options = new LinkedHashMap<>();

    private ParamGroup(List<Tensor> params) {
        this.params = params;
    }

    public static ParamGroup of(Collection<Tensor> params) {
        Objects.requireNonNull(params, "params");
        List<Tensor> list = new ArrayList<>(params.size());
        for (Tensor p : params) {
            list.add(Objects.requireNonNull(p, "a parameter of the group is null"));
        }
        return new ParamGroup(List.copyOf(list));
    }

    public static ParamGroup of(Tensor... params) {
        return of(List.of(params));
    }

    public List<Tensor> params() {
        return params;
    }

    public ParamGroup lr(float lr) {
        return set("lr", lr);
    }

    public ParamGroup weightDecay(float weightDecay) {
        return set("weight_decay", weightDecay);
    }

    public ParamGroup momentum(float momentum) {
        return set("momentum", momentum);
    }

    public ParamGroup dampening(float dampening) {
        return set("dampening", dampening);
    }

    public ParamGroup nesterov(boolean nesterov) {
        return set("nesterov", nesterov);
    }

    public ParamGroup betas(float beta1, float beta2) {
        set("beta1", beta1);
        return set("beta2", beta2);
    }

    public ParamGroup eps(float eps) {
        return set("eps", eps);
    }

    private ParamGroup set(String key, Object value) {
        options.put(key, value);
        return this;
    }

    /** The options this group sets, under PyTorch's names (betas as {@code beta1}, {@code beta2}). */
    public Map<String, Object> options() {
        return java.util.Collections.unmodifiableMap(options);
    }

    float floatOption(String key, float fallback) {
        Object v = options.get(key);
        return v == null ? fallback : (Float) v;
    }

    boolean booleanOption(String key, boolean fallback) {
        Object v = options.get(key);
        return v == null ? fallback : (Boolean) v;
    }

    @Override
    public String toString() {
        return "ParamGroup(" + params.size() + " tensors" + (options.isEmpty() ? "" : ", " + options) + ")";
    }
}
