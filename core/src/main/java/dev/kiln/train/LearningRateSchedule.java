package dev.kiln.train;

/** The learning rate as a function of training progress, applied by the {@link Trainer} before every step. */
@FunctionalInterface
public interface LearningRateSchedule {

    /**
     * @param base     the optimizer's initial learning rate
     * @param progress fraction of all training steps done before this one, in [0, 1)
     */
    float lr(float base, double progress);

    static LearningRateSchedule constant() {
        return (base, progress) -> base;
    }

    /** Half a cosine from {@code base} down to 0 over the whole run. */
    static LearningRateSchedule cosine() {
        return (base, progress) -> (float) (base * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }

    /** "constant" or "cosine". */
    static LearningRateSchedule named(String name) {
        return switch (name) {
            case "constant" -> constant();
            case "cosine" -> cosine();
            default -> throw new IllegalArgumentException("unknown learning-rate schedule '" + name + "' (constant, cosine)");
        };
    }
}
