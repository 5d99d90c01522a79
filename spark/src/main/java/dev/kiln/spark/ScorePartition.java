package dev.kiln.spark;

import dev.kiln.inference.Predictor;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/** Scores one partition in batches with the executor's cached predictor (built on the first non-empty batch). */
final class ScorePartition implements MapPartitionsFunction<Row, Row> {

    private static final long serialVersionUID = 1L;

    private final Broadcast<byte[]> model;
    private final String modelId;
    private final int inputIndex;
    private final boolean binary;
    private final int batchSize;
    private final int topK;
    private final String device;

    ScorePartition(Broadcast<byte[]> model, String modelId, int inputIndex, boolean binary, int batchSize, int topK,
                   String device) {
        this.model = model;
        this.modelId = modelId;
        this.inputIndex = inputIndex;
        this.binary = binary;
        this.batchSize = batchSize;
        this.topK = topK;
        this.device = device;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
        return new Iterator<>() {
            private final List<Row> out = new ArrayList<>();
            private int next;

            @Override
            public boolean hasNext() {
                if (next < out.size()) {
                    return true;
                }
                out.clear();
                next = 0;
                if (!rows.hasNext()) {
                    return false;
                }
                List<Row> batch = new ArrayList<>(batchSize);
                while (batch.size() < batchSize && rows.hasNext()) {
                    batch.add(rows.next());
                }
                score(batch, out);
                return true;
            }

            @Override
            public Row next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return out.get(next++);
            }
        };
    }

    private void score(List<Row> batch, List<Row> out) {
        try (PredictorCache.Lease lease = PredictorCache.acquire(modelId, TaskDevices.deviceSpec(device), model::value)) {
            score(lease.predictor(), batch, out);
        }
    }

    private void score(Predictor predictor, List<Row> batch, List<Row> out) {
        float[][] probabilities;
        if (binary) {
            byte[][] images = new byte[batch.size()][];
            for (int i = 0; i < images.length; i++) {
                images[i] = (byte[]) input(batch.get(i), i);
            }
            probabilities = predictor.probabilities(images);
        } else {
            float[][] images = new float[batch.size()][];
            for (int i = 0; i < images.length; i++) {
                input(batch.get(i), i);
                images[i] = toFloats(batch.get(i).getList(inputIndex), i);
            }
            probabilities = predictor.probabilities(images);
        }
        int k = Math.min(topK, predictor.numClasses());
        for (int i = 0; i < batch.size(); i++) {
            Row row = batch.get(i);
            float[] p = probabilities[i];
            int[] order = TopK.indices(p, k);
            List<Row> top = new ArrayList<>(k);
            for (int c : order) {
                top.add(RowFactory.create(c, p[c]));
            }
            Object[] values = new Object[row.length() + 3];
            for (int j = 0; j < row.length(); j++) {
                values[j] = row.get(j);
            }
            values[row.length()] = order[0];
            values[row.length() + 1] = p;
            values[row.length() + 2] = scala.jdk.javaapi.CollectionConverters.asScala(top).toSeq();
            out.add(RowFactory.create(values));
        }
    }

    private Object input(Row row, int i) {
        if (row.isNullAt(inputIndex)) {
            throw new IllegalArgumentException("model " + modelId.substring(0, 12) + ": row " + i
                    + " of a batch has a null image in column " + row.schema().fieldNames()[inputIndex]);
        }
        return row.get(inputIndex);
    }

    private static float[] toFloats(List<Float> list, int i) {
        float[] f = new float[list.size()];
        for (int j = 0; j < f.length; j++) {
            Float v = list.get(j);
            if (v == null) {
                throw new IllegalArgumentException("image " + i + " of a batch has a null pixel at " + j);
            }
            f[j] = v;
        }
        return f;
    }
}
