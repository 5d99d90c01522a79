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
        writeSideBySide(png, loss, acc);
    }

    /** Two scatter plots: original points and normalised points. */
    static void scatterPair(Path png, float[] original, float[] normalized, int points) throws IOException {
        XYChart left = scatter("original (N(5, 2))", original, points);
        XYChart right = scatter("after BatchNorm1d(2)", normalized, points);
        writeSideBySide(png, left, right);
    }

    private static XYChart scatter(String title, float[] xy, int points) {
        double[] x = new double[points];
        double[] y = new double[points];
        for (int i = 0; i < points; i++) {
            x[i] = xy[2 * i];
            y[i] = xy[2 * i + 1];
        }
        XYChart c = new XYChartBuilder().width(500).height(500).title(title).xAxisTitle("feature 0").yAxisTitle("feature 1").build();
        c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        c.getStyler().setLegendVisible(false);
        c.addSeries(title, x, y);
        return c;
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
        Path abs = png.toAbsolutePath();
        if (abs.getParent() != null) {
            Files.createDirectories(abs.getParent());
        }
        dev.kiln.io.AtomicFiles.write(abs, out -> javax.imageio.ImageIO.write(both, "png", out));
    }
}
