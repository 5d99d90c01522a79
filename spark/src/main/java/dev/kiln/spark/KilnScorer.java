package dev.kiln.spark;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.util.Arrays;
import java.util.Objects;

/**
 * Scores a DataFrame of images with a Kiln model, in parallel on the executors: the model (self-contained bytes,
 * e.g. {@code ModelFiles.toBytes} or a model file's content) is broadcast once, each executor JVM builds one
 * {@link dev.kiln.inference.Predictor} for it ({@link PredictorCache}) and every partition is scored in batches
 * inside {@code mapPartitions}. The input column is either {@code binary} (unsigned 8-bit pixels) or
 * {@code array<float>} (raw pixel values); both get the normalisation recorded in the model. The output keeps
 * every input column and adds:
 * <ul>
 *   <li>{@code prediction} ({@code int}): the most probable class;</li>
 *   <li>{@code probability} ({@code array<float>}): the softmax over all classes;</li>
 *   <li>{@code top_k} ({@code array<struct<class:int, probability:float>>}): the k most probable classes.</li>
 * </ul>
 * A task given a GPU by Spark scores on that GPU ({@link TaskDevices}).
 *
 * <pre>{@code
 * Dataset<Row> scored = KilnScorer.of(Files.readAllBytes(modelFile)).inputCol("image").topK(3).transform(images);
 * }</pre>
 */
public final class KilnScorer {

    private final byte[] modelBytes;
    private final String modelId;
    private String inputCol = "image";
    private String predictionCol = "prediction";
    private String probabilityCol = "probability";
    private String topKCol = "top_k";
    private int topK = 3;
    private int batchSize = 256;
    private String device = "auto";

    private KilnScorer(byte[] modelBytes) {
        this.modelBytes = Objects.requireNonNull(modelBytes, "modelBytes").clone();
        if (modelBytes.length == 0) {
            throw new IllegalArgumentException("KilnScorer: the model bytes are empty");
        }
        this.modelId = PredictorCache.modelId(modelBytes);
    }

    /** A scorer for a self-contained model (what {@code ModelFiles.toBytes} or {@code ModelFiles.save} writes). */
    public static KilnScorer of(byte[] modelBytes) {
        return new KilnScorer(modelBytes);
    }

    public KilnScorer inputCol(String name) {
        this.inputCol = Objects.requireNonNull(name);
        return this;
    }

    public KilnScorer predictionCol(String name) {
        this.predictionCol = Objects.requireNonNull(name);
        return this;
    }

    public KilnScorer probabilityCol(String name) {
        this.probabilityCol = Objects.requireNonNull(name);
        return this;
    }

    public KilnScorer topKCol(String name) {
        this.topKCol = Objects.requireNonNull(name);
        return this;
    }

    /** Classes in the top-k column (default 3). */
    public KilnScorer topK(int k) {
        if (k < 1) {
            throw new IllegalArgumentException("KilnScorer: topK must be at least 1, got " + k);
        }
        this.topK = k;
        return this;
    }

    /** Rows scored per predictor call inside a partition (default 256). */
    public KilnScorer batchSize(int rows) {
        if (rows < 1) {
            throw new IllegalArgumentException("KilnScorer: batch size must be at least 1, got " + rows);
        }
        this.batchSize = rows;
        return this;
    }

    /** The device of tasks without a Spark-assigned GPU: "auto" (default), "cpu", "cuda", "cuda:N". */
    public KilnScorer device(String spec) {
        this.device = Objects.requireNonNull(spec);
        return this;
    }

    /** The SHA-256 of the model bytes, which names the model in every executor's cache. */
    public String modelId() {
        return modelId;
    }

    /** The input schema plus the prediction, probability and top-k columns. */
    public StructType outputSchema(StructType input) {
        inputIndex(input);
        for (String col : new String[]{predictionCol, probabilityCol, topKCol}) {
            if (Arrays.asList(input.fieldNames()).contains(col)) {
                throw new IllegalArgumentException("KilnScorer: output column '" + col + "' already exists in "
                        + input.simpleString());
            }
        }
        StructType entry = new StructType()
                .add("class", DataTypes.IntegerType, false)
                .add("probability", DataTypes.FloatType, false);
        return input
                .add(predictionCol, DataTypes.IntegerType, false)
                .add(probabilityCol, DataTypes.createArrayType(DataTypes.FloatType, false), false)
                .add(topKCol, DataTypes.createArrayType(entry, false), false);
    }

    /** Scores every row; lazy like any transformation. */
    public Dataset<Row> transform(Dataset<Row> images) {
        StructType out = outputSchema(images.schema());
        int index = inputIndex(images.schema());
        boolean binary = images.schema().fields()[index].dataType() instanceof BinaryType;
        Broadcast<byte[]> model = JavaSparkContext.fromSparkContext(images.sparkSession().sparkContext())
                .broadcast(modelBytes);
        ScorePartition fn = new ScorePartition(model, modelId, index, binary, batchSize, topK, device);
        return images.mapPartitions(fn, Encoders.row(out));
    }

    private int inputIndex(StructType schema) {
        if (!Arrays.asList(schema.fieldNames()).contains(inputCol)) {
            throw new IllegalArgumentException("KilnScorer: no input column '" + inputCol + "' in " + schema.simpleString());
        }
        StructField f = schema.apply(inputCol);
        DataType t = f.dataType();
        boolean ok = t instanceof BinaryType
                || (t instanceof ArrayType a && a.elementType() instanceof FloatType);
        if (!ok) {
            throw new IllegalArgumentException("KilnScorer: input column '" + inputCol + "' has type "
                    + t.simpleString() + "; expected binary (uint8 pixels) or array<float>");
        }
        return schema.fieldIndex(inputCol);
    }
}
