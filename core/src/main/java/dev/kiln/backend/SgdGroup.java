package dev.kiln.backend;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/** The argument checks of {@link Backend#sgdStepMany} that do not depend on the backend's buffer type. */
public final class SgdGroup {

    private SgdGroup() {
    }

    /**
     * Checks that the arrays are present (momentum buffers only with momentum), of one length, and that no parameter
     * appears twice (a kernel updating it twice in one pass would race); returns the number of parameters.
     */
    public static int checkArrays(String op, SgdHyper h, Buffer[] params, Buffer[] grads, Buffer[] momentumBuffers,
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
}
