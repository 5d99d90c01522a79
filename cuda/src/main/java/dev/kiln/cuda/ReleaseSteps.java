package dev.kiln.cuda;

/**
 * Runs release steps one after another whatever the earlier ones threw, so one failing call (a sticky CUDA error
 * fails every later driver call) cannot keep the other resources allocated. {@link #finish()} then throws the first
 * failure, the later ones attached as suppressed.
 */
final class ReleaseSteps {

    private RuntimeException first;

    /** Runs {@code step}; a {@link RuntimeException} from it is kept for {@link #finish()}. */
    void run(Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            if (first == null) {
                first = e;
            } else if (first != e) {
                first.addSuppressed(e);
            }
        }
    }

    /** Attaches every failure kept so far to {@code primary} (a constructor's own failure, which is what gets thrown). */
    <T extends Throwable> T attachTo(T primary) {
        if (first != null && first != primary) {
            primary.addSuppressed(first);
        }
        return primary;
    }

    /** Throws the first failure, if any. */
    void finish() {
        if (first != null) {
            throw first;
        }
    }
}
