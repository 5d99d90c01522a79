package dev.kiln.spark;

import dev.kiln.inference.Prediction;
import dev.kiln.inference.Predictor;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Distributed scoring in local[2] against the same model scored by one Predictor in this JVM. */
class KilnScorerTest {

    private static final int COUNT = 300;
    private static SparkSession spark;
    private static byte[] model;
    private static byte[][] images;

    @BeforeAll
    static void start() {
        spark = LocalSpark.start("KilnScorerTest");
        model = TestModels.trainedLeNetBytes();
        images = TestModels.images(COUNT, 11);
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
    }

    private static final StructType SCHEMA = new StructType()
            .add("id", DataTypes.IntegerType, false)
            .add("image", DataTypes.BinaryType, false)
            .add("pixels", DataTypes.createArrayType(DataTypes.FloatType, false), false);

    /** Rows (id, uint8 image, the same pixels as floats 0-255) in {@code partitions} partitions. */
    private static Dataset<Row> frame(int count, int partitions) {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            float[] px = new float[784];
            for (int p = 0; p < 784; p++) {
                px[p] = images[i][p] & 0xFF;
            }
            rows.add(RowFactory.create(i, images[i], px));
        }
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        return spark.createDataFrame(jsc.parallelize(rows, partitions), SCHEMA);
    }

    @Test
    void binaryAndFloatColumnsGiveBitwiseTheSingleJvmPredictorsResults() throws Exception {
        float[][] wantProbabilities;
        int[] wantClasses;
        Prediction[] wantTop;
        try (Predictor p = Predictor.load(model)) {
            wantProbabilities = p.probabilities(images);
            wantClasses = p.classes(images);
            wantTop = p.topK(images, 3);
        }
        for (String column : new String[]{"image", "pixels"}) {
            List<Row> out = KilnScorer.of(model).inputCol(column).batchSize(64).topK(3)
                    .transform(frame(COUNT, 5)).collectAsList();
            assertEquals(COUNT, out.size(), column);
            int distinct = (int) java.util.Arrays.stream(wantClasses).distinct().count();
            assertTrue(distinct > 1, "the model separates the inputs (" + distinct + " classes)");
            java.util.Set<Integer> seen = new java.util.HashSet<>();
            for (Row r : out) {
                int id = r.getInt(0);
                assertTrue(seen.add(id), "row " + id + " once");
                assertEquals(wantClasses[id], r.getInt(r.fieldIndex("prediction")), column + " row " + id);
                List<Float> probs = r.getList(r.fieldIndex("probability"));
                float[] got = new float[probs.size()];
                assertEquals(10, got.length);
                for (int i = 0; i < got.length; i++) {
                    got[i] = probs.get(i);
                }
                assertArrayEquals(wantProbabilities[id], got, column + " row " + id + " probabilities (bitwise)");
                List<Row> top = r.getList(r.fieldIndex("top_k"));
                assertEquals(3, top.size());
                for (int k = 0; k < 3; k++) {
                    assertEquals(wantTop[id].classes()[k], top.get(k).getInt(0), column + " row " + id + " top " + k);
                    assertEquals(wantTop[id].probabilities()[k], top.get(k).getFloat(1), 0f);
                }
            }
        }
        // one executor JVM (local mode): one predictor for the model, reused by every task and both runs
        assertEquals(1, PredictorCache.size());
    }

    @Test
    void emptyPartitionsAndEmptyFramesAreFine() {
        Dataset<Row> sparse = frame(3, 8);   // 5 of 8 partitions empty
        List<Row> out = KilnScorer.of(model).transform(sparse).collectAsList();
        assertEquals(3, out.size());
        assertEquals(0, KilnScorer.of(model).transform(frame(0, 2)).count());
    }

    @Test
    void badInputIsNamed() {
        Dataset<Row> df = frame(2, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KilnScorer.of(model).inputCol("id").transform(df));
        assertTrue(e.getMessage().contains("'id'") && e.getMessage().contains("int"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KilnScorer.of(model).inputCol("nope").transform(df));
        assertTrue(e.getMessage().contains("'nope'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> KilnScorer.of(model).predictionCol("id").transform(df));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
    }
}
