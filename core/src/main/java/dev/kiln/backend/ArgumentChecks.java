package dev.kiln.backend;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/** Argument checks of {@link Backend} methods that do not depend on a backend's buffer type, shared by backends. */
public final class ArgumentChecks {

    private ArgumentChecks() {
    }

    /**
     * {@link Backend#sgdStepMany}: checks that the arrays are present (momentum buffers only with momentum), of one length, and that no parameter
     * appears twice (a kernel updating it twice in one pass would race); returns the number of parameters.
     */
    public static int sgdGroup(String op, SgdHyper h, Buffer[] params, Buffer[] grads, Buffer[] momentumBuffers,
                                  long[] lengths) {
        if (params == null || grads == null || lengths == null) {
            throw new IllegalArgumentException(op + ": params, grads and lengths must not be null");
        }
        int count = params.length;
        if (grads.length != count || lengths.length != count) {
            throw new IllegalArgumentException(op + ": " + count + " params but " + grads.length + " grads and "
                    + lengths.length + " lengths");
        }
        if (h.momentum() != 0f && momentumBuffers == null) {
            throw new IllegalArgumentException(op + ": momentum " + h.momentum() + " needs momentum buffers, got null");
        }
        if (momentumBuffers != null && momentumBuffers.length != count) {
            throw new IllegalArgumentException(op + ": " + count + " params but " + momentumBuffers.length
                    + " momentum buffers");
        }
        Set<Buffer> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < count; i++) {
            if (params[i] != null && !seen.add(params[i])) {
                throw new IllegalArgumentException(op + ": params[" + i + "] appears twice in one step");
            }
        }
        return count;
    }

    /** {@link Backend#biasActivation}: the element count of {@code (outer, channels, inner)}, checked. */
    public static long biasActivationLength(String op, int outer, int channels, int inner) {
        if (outer < 0 || channels < 1 || inner < 1) {
            throw new IllegalArgumentException(op + ": need outer >= 0, channels >= 1 and inner >= 1, got (" + outer
                    + ", " + channels + ", " + inner + ")");
        }
        return (long) outer * channels * inner;
    }
}
