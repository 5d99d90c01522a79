package dev.kiln.train;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Progress as periodic SLF4J lines: the form used when the output is not a terminal. */
public final class LoggingListener implements TrainingListener {

    private static final Logger LOG = LoggerFactory.getLogger(LoggingListener.class);

    private final long intervalNanos;
    private long lastLog;

    /** @param intervalSeconds at most one line per interval during an epoch */
    public LoggingListener(double intervalSeconds) {
        this.intervalNanos = (long) (intervalSeconds * 1e9);
    }

    @Override
    public void onEpochStart(int epoch, int totalEpochs, int batches) {
        lastLog = System.nanoTime();
        LOG.info("epoch {}/{}: {} batches", epoch + 1, totalEpochs, batches);
    }

    @Override
    public void onBatch(int epoch, int batch, int batches, double lossValue, double imagesPerSecond) {
        long now = System.nanoTime();
        if (now - lastLog >= intervalNanos) {
            lastLog = now;
            LOG.info("epoch {} batch {}/{} loss {} {} images/s", epoch + 1, batch + 1, batches,
                    String.format(java.util.Locale.ROOT, "%.4f", lossValue), Math.round(imagesPerSecond));
        }
    }

    @Override
    public void onEpochEnd(EpochMetrics m) {
        LOG.info(String.format(java.util.Locale.ROOT,
                "epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s, %.0f images/s",
                m.epoch() + 1, m.trainLoss(), m.trainAccuracy(), m.testLoss(), m.testAccuracy(),
                m.trainSeconds(), m.imagesPerSecond()));
    }
}
