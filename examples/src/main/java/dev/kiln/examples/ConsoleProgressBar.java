package dev.kiln.examples;

import dev.kiln.train.EpochMetrics;
import dev.kiln.train.TrainingListener;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * A one-line progress bar redrawn in place (batches done, loss, images/s, ETA) for interactive terminals.
 * Redraws at most ten times a second so drawing never slows training. The ETA comes from the pace of the last
 * seconds, not the epoch's average: the first steps of a fresh JVM run before the JIT has compiled the kernels and
 * are many times slower than the rest, so an average from the start overestimates the epoch several times over.
 */
final class ConsoleProgressBar implements TrainingListener {

    private static final int WIDTH = 30;
    /** The ETA's pace is measured over at least this long (and shown only once this much of the epoch has run). */
    static final long PACE_WINDOW_NANOS = 2_000_000_000L;
    private final PrintStream out;
    private final LongSupplier clock;
    private long lastDraw;
    private int totalEpochs;
    /** Start of the current pace window: time and batches done then. */
    private long windowStart;
    private int windowBatches;
    /** Seconds per batch over the last complete window; NaN before the first one. */
    private double secondsPerBatch = Double.NaN;
    private boolean lineOpen;

    ConsoleProgressBar(PrintStream out) {
        this(out, System::nanoTime);
    }

    ConsoleProgressBar(PrintStream out, LongSupplier clock) {
        this.out = out;
        this.clock = clock;
    }

    @Override
    public void onEpochStart(int epoch, int totalEpochs, int batches) {
        this.totalEpochs = totalEpochs;
        lastDraw = Long.MIN_VALUE;
        windowStart = clock.getAsLong();
        windowBatches = 0;
        secondsPerBatch = Double.NaN;
    }

    @Override
    public synchronized void onBatch(int epoch, int batch, int batches, double loss, double imagesPerSecond) {
        long now = clock.getAsLong();
        int done = batch + 1;
        if (now - windowStart >= PACE_WINDOW_NANOS && done > windowBatches) {
            secondsPerBatch = (now - windowStart) / 1e9 / (done - windowBatches);
            windowStart = now;
            windowBatches = done;
        }
        boolean last = done == batches;
        if (!last && lastDraw != Long.MIN_VALUE && now - lastDraw < 100_000_000L) {
            return;
        }
        lastDraw = now;
        int filled = (int) ((long) WIDTH * done / batches);
        out.printf(Locale.ROOT, "\repoch %d/%d [%s%s] %d/%d loss %.4f %,.0f img/s ETA %s   ",
                epoch + 1, totalEpochs, "=".repeat(filled), " ".repeat(WIDTH - filled), done, batches, loss,
                imagesPerSecond, eta(batches - done));
        out.flush();
        lineOpen = true;
    }

    /** The time left at the last window's pace, or "?" until a window has been measured. */
    String eta(int batchesLeft) {
        return Double.isNaN(secondsPerBatch) ? "?" : formatSeconds(secondsPerBatch * batchesLeft);
    }

    /** Ends the bar's line, if one is open, so that a message written now starts on a line of its own. */
    synchronized void breakLine() {
        if (lineOpen) {
            out.println();
            out.flush();
            lineOpen = false;
        }
    }

    @Override
    public synchronized void onEpochEnd(EpochMetrics m) {
        lineOpen = false;
        out.printf(Locale.ROOT, "%nepoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1f s, %,.0f img/s%n",
                m.epoch() + 1, totalEpochs, m.trainLoss(), 100 * m.trainAccuracy(), m.testLoss(), 100 * m.testAccuracy(),
                m.trainSeconds(), m.imagesPerSecond());
        out.flush();
    }

    private static String formatSeconds(double s) {
        long t = Math.round(s);
        return t >= 60 ? String.format(Locale.ROOT, "%dm%02ds", t / 60, t % 60) : t + "s";
    }
}
