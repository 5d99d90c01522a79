package dev.kiln.examples;

import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.PrintWriter;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Ctrl-C (SIGINT) while a command works: the first asks the work to stop at its next safe point (the trainer
 * before its next batch, so files on disk stay whole); a second ends the process at once with the same exit code.
 * {@code sun.misc.Signal} because the JDK has no supported way to handle a signal without exiting, and a shutdown
 * hook runs only after the JVM has already decided to stop. Closing restores the previous handler.
 */
final class Interrupts implements AutoCloseable {

    /** The shell convention for a process ended by SIGINT (128 + 2). */
    static final int EXIT_CODE = 130;

    private final Signal signal;
    private final SignalHandler previous;

    private Interrupts(Signal signal, SignalHandler previous) {
        this.signal = signal;
        this.previous = previous;
    }

    /** Installs the handler; where the platform has no SIGINT (or forbids handling it), does nothing. */
    static Interrupts stopOnSigint(Runnable requestStop, PrintWriter err) {
        return stopOnSigint(requestStop, err, () -> { });
    }

    /** As above; {@code beforeMessage} runs first (e.g. ends a progress bar's line, so the message has its own). */
    static Interrupts stopOnSigint(Runnable requestStop, PrintWriter err, Runnable beforeMessage) {
        AtomicInteger count = new AtomicInteger();
        try {
            Signal sigint = new Signal("INT");
            SignalHandler old = Signal.handle(sigint, s -> {
                if (count.incrementAndGet() > 1) {
                    Runtime.getRuntime().halt(EXIT_CODE);
                }
                beforeMessage.run();
                err.println("kiln: interrupt: stopping before the next batch (Ctrl-C again to quit at once)");
                err.flush();
                requestStop.run();
            });
            return new Interrupts(sigint, old);
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            return new Interrupts(null, null);
        }
    }

    @Override
    public void close() {
        if (signal != null) {
            Signal.handle(signal, previous);
        }
    }
}
