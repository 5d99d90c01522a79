package dev.kiln.examples;

import dev.kiln.train.EpochMetrics;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** PNG charts written with XChart; files are written to a temporary name and moved into place. */
final class Charts {

    private Charts() {
    }

    /** Train/test loss and test accuracy per epoch, side by side. */
    static void trainingCurves(Path png, List<EpochMetrics> history) throws IOException {
        double[] epochs = new double[history.size()];
        double[] trainLoss = new double[history.size()];
        double[] testLoss = new double[history.size()];
        double[] trainAcc = new double[history.size()];
        double[] testAcc = new double[history.size()];
        for (int i = 0; i < history.size(); i++) {
            EpochMetrics m = history.get(i);
            epochs[i] = m.epoch() + 1;
            trainLoss[i] = m.trainLoss();
            testLoss[i] = m.testLoss();
            trainAcc[i] = 100 * m.trainAccuracy();
            testAcc[i] = 100 * m.testAccuracy();
        }
        XYChart loss = new XYChartBuilder().width(600).height(400).title("Loss").xAxisTitle("epoch").yAxisTitle("cross-entropy").build();
        loss.addSeries("train", epochs, trainLoss).setMarker(SeriesMarkers.CIRCLE);
        loss.addSeries("test", epochs, testLoss).setMarker(SeriesMarkers.DIAMOND);
        XYChart acc = new XYChartBuilder().width(600).height(400).title("Accuracy").xAxisTitle("epoch").yAxisTitle("%").build();
        acc.addSeries("train", epochs, trainAcc).setMarker(SeriesMarkers.CIRCLE);
        acc.addSeries("test", epochs, testAcc).setMarker(SeriesMarkers.DIAMOND);
        readableAxes(loss, history.size(), trainLoss, testLoss);
        readableAxes(acc, history.size(), trainAcc, testAcc);
        writeSideBySide(png, loss, acc);
    }

    /**
     * Whole epochs on x with half an epoch of margin (one epoch is a point in the middle, not a point on the edge),
     * and a y range rounded outwards to a tenth of its span, so ticks are short round numbers even when every value
     * is the same.
     */
    private static void readableAxes(XYChart chart, int epochs, double[]... series) {
        chart.getStyler().setMarkerSize(9);
        chart.getStyler().setXAxisMin(0.5).setXAxisMax(epochs + 0.5);
        chart.getStyler().setXAxisDecimalPattern("0");
        chart.getStyler().setXAxisMaxLabelCount(Math.min(epochs + 2, 12));
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (double[] s : series) {
            for (double v : s) {
                if (Double.isFinite(v)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        if (lo > hi) {
            return;
        }
        double span = Math.max(hi - lo, Math.max(Math.abs(hi) * 0.02, 1e-3));
        double step = Math.pow(10, Math.floor(Math.log10(span)));
        chart.getStyler().setYAxisMin(Math.floor((lo - 0.1 * span) / step) * step);
        chart.getStyler().setYAxisMax(Math.ceil((hi + 0.1 * span) / step) * step);
        int decimals = Math.max(0, (int) -Math.floor(Math.log10(step)) + 1);
        chart.getStyler().setYAxisDecimalPattern(decimals == 0 ? "0" : "0." + "#".repeat(decimals));
    }

    /**
     * The post's figure: the original points (blue) and the normalised ones (red) on one scatter plot, with a legend
     * and dashed zero lines, so the shift to the origin and the change of scale are both visible.
     */
    static void batchNormScatter(Path png, float[] original, float[] normalized, int points) throws IOException {
        XYChart c = new XYChartBuilder().width(800).height(600).title("Batch Normalization Visualization")
                .xAxisTitle("Feature 1").yAxisTitle("Feature 2").build();
        c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        c.getStyler().setMarkerSize(10);
        c.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW);
        c.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
        c.getStyler().setXAxisDecimalPattern("0.#");
        c.getStyler().setYAxisDecimalPattern("0.#");
        double lo = 0;
        double hi = 0;
        double[][] o = columns(original, points);
        double[][] n = columns(normalized, points);
        for (double[][] xy : List.of(o, n)) {
            for (double[] col : xy) {
                for (double v : col) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        double pad = 0.05 * (hi - lo);
        lo = Math.floor(lo - pad);
        hi = Math.ceil(hi + pad);
        c.getStyler().setXAxisMin(lo).setXAxisMax(hi).setYAxisMin(lo).setYAxisMax(hi);
        for (String axis : List.of("x = 0", "y = 0")) {
            boolean vertical = axis.startsWith("x");
            XYSeries zero = c.addSeries(axis, vertical ? new double[]{0, 0} : new double[]{lo, hi},
                    vertical ? new double[]{lo, hi} : new double[]{0, 0});
            zero.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            zero.setMarker(SeriesMarkers.NONE);
            zero.setLineColor(java.awt.Color.GRAY);
            zero.setLineStyle(org.knowm.xchart.style.lines.SeriesLines.DASH_DASH);
            zero.setShowInLegend(false);
        }
        c.addSeries("Original Data", o[0], o[1]).setMarkerColor(java.awt.Color.BLUE).setMarker(SeriesMarkers.CIRCLE);
        c.addSeries("Normalized Data", n[0], n[1]).setMarkerColor(java.awt.Color.RED).setMarker(SeriesMarkers.CIRCLE);
        write(png, BitmapEncoder.getBufferedImage(c));
    }

    /** Row-major (points, 2) as two columns. */
    private static double[][] columns(float[] xy, int points) {
        double[][] out = new double[2][points];
        for (int i = 0; i < points; i++) {
            out[0][i] = xy[2 * i];
            out[1][i] = xy[2 * i + 1];
        }
        return out;
    }

    private static void writeSideBySide(Path png, XYChart a, XYChart b) throws IOException {
        java.awt.image.BufferedImage ia = BitmapEncoder.getBufferedImage(a);
        java.awt.image.BufferedImage ib = BitmapEncoder.getBufferedImage(b);
        java.awt.image.BufferedImage both = new java.awt.image.BufferedImage(ia.getWidth() + ib.getWidth(),
                Math.max(ia.getHeight(), ib.getHeight()), java.awt.image.BufferedImage.TYPE_INT_RGB);
        java.awt.Graphics2D g = both.createGraphics();
        g.setColor(java.awt.Color.WHITE);
        g.fillRect(0, 0, both.getWidth(), both.getHeight());
        g.drawImage(ia, 0, 0, null);
        g.drawImage(ib, ia.getWidth(), 0, null);
        g.dispose();
        write(png, both);
    }

    private static void write(Path png, java.awt.image.BufferedImage image) throws IOException {
        Path abs = png.toAbsolutePath();
        if (abs.getParent() != null) {
            Files.createDirectories(abs.getParent());
        }
        dev.kiln.io.AtomicFiles.write(abs, out -> javax.imageio.ImageIO.write(image, "png", out));
    }
}
