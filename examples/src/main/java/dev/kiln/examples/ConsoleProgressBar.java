package dev.kiln.examples;

import dev.kiln.train.EpochMetrics;
import dev.kiln.train.TrainingListener;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar redrawn in place (batches done, loss, images/s, ETA) for interactive terminals.
 * Redraws at most ten times a second so drawing never slows training.
 */
final class ConsoleProgressBar implements TrainingListener {

    private static final int WIDTH = 30;
    private final PrintStream out;
    private long lastDraw;
    private long epochStart;
    private int totalEpochs;

    ConsoleProgressBar(PrintStream out) {
        this.out = out;
    }

    @Override
    public void onEpochStart(int epoch, int totalEpochs, int batches) {
        this.totalEpochs = totalEpochs;
        lastDraw = 0;
        epochStart = System.nanoTime();
    }

    @Override
    public void onBatch(int epoch, int batch, int batches, double loss, double imagesPerSecond) {
        long now = System.nanoTime();
        boolean last = batch + 1 == batches;
        if (!last && now - lastDraw < 100_000_000L) {
            return;
        }
        lastDraw = now;
        int filled = (int) ((long) WIDTH * (batch + 1) / batches);
        double etaSeconds = (now - epochStart) / 1e9 / (batch + 1) * (batches - batch - 1);
        out.printf(Locale.ROOT, "\repoch %d/%d [%s%s] %d/%d loss %.4f %,.0f img/s ETA %s   ",
                epoch + 1, totalEpochs, "=".repeat(filled), " ".repeat(WIDTH - filled), batch + 1, batches, loss,
                imagesPerSecond, formatSeconds(etaSeconds));
        out.flush();
    }

    @Override
    public void onEpochEnd(EpochMetrics m) {
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
