package dev.kiln.spark;

import dev.kiln.core.Device;
import dev.kiln.inference.Predictor;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.util.ArrayList;
import java.util.List;

/**
 * A Spark application whose Kiln classes come from user jars, as with {@code spark-submit --jars}: loaded by
 * {@link ClassLoaderIsolationTest} in a class loader above Spark's, never from the application class path.
 */
public final class IsolatedJob {

    private IsolatedJob() {
    }

    /** @return lines describing what the executors saw, and the scoring and training outcomes */
    public static List<String> run(String userJars, ClassLoader sparkLoader) throws java.io.IOException {
        // as spark-submit does: the driver runs with the user jars' loader as context loader; in local mode the
        // executor's own loader (which fetches spark.jars) sits above it
        ClassLoader userLoader = Thread.currentThread().getContextClassLoader();
        if (Device.class.getClassLoader() == sparkLoader || userLoader.getParent() != sparkLoader) {
            throw new IllegalStateException("IsolatedJob must run in a user loader above Spark's");
        }
        SparkSession spark = SparkSession.builder().appName("isolated").master("local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.jars", userJars)
                .getOrCreate();
        List<String> out = new ArrayList<>();
        try {
            JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
            JavaRDD<String> probe = jsc.parallelize(List.of(1, 2), 2).map(i ->
                    "executor: " + Predictor.class.getClassLoader().getName()
                            + " context " + Thread.currentThread().getContextClassLoader().getClass().getName()
                            + " device " + Device.cpu().name());
            out.addAll(probe.collect());

            byte[][] images = TestModels.images(20, 3);
            byte[] model = TestModels.trainedLeNetBytes();
            List<Row> rows = new ArrayList<>();
            for (int i = 0; i < images.length; i++) {
                rows.add(RowFactory.create(images[i], TestModels.label(i)));
            }
            StructType schema = new StructType().add("image", DataTypes.BinaryType, false)
                    .add("label", DataTypes.IntegerType, false);
            Dataset<Row> frame = spark.createDataFrame(jsc.parallelize(rows, 2), schema);
            List<Row> scored = KilnScorer.of(model).transform(frame).collectAsList();
            int[] want;
            try (Predictor p = Predictor.load(model)) {
                want = p.classes(images);
            }
            int same = 0;
            for (int i = 0; i < scored.size(); i++) {
                same += scored.get(i).getInt(2) == want[i] ? 1 : 0;
            }
            out.add("scored " + scored.size() + " rows, " + same + " equal to the driver's predictor");
            DistributedTrainer.Result result = DistributedTrainer.fit(frame, "image", "label",
                    new DistributedTrainer.Config().tasks(2).batchSizePerTask(4).device("cpu"));
            out.add("trained " + result.rank0().steps() + " steps, model of " + result.model().length + " bytes");
            return out;
        } finally {
            spark.stop();
            Thread.currentThread().setContextClassLoader(userLoader);
        }
    }
}
