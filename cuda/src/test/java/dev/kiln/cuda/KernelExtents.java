package dev.kiln.cuda;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.UnaryOp;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * What each of Kiln's kernels reads and writes, in bytes per pointer parameter, computed from the launch's other
 * arguments the way the kernel's source (src/main/cuda) indexes: the checking stand-in verifies every pointer against
 * it. Also the launch rules the source assumes (block size of the shared-memory reductions, operation codes).
 */
final class KernelExtents {

    /** One pointer parameter: its index in the launch, a name for messages, the bytes it must hold (0: unused). */
    record Access(int index, String name, long bytes, boolean nullable) {
    }

    private static final int F = Float.BYTES;

    private KernelExtents() {
    }

    static long l(Object o) {
        return o instanceof Long v ? v : ((Number) o).longValue();
    }

    static int i(Object o) {
        return (Integer) o;
    }

    private static Access at(int index, String name, long floats) {
        return new Access(index, name, floats * F, false);
    }

    private static Access nullable(int index, String name, long floats) {
        return new Access(index, name, floats * F, true);
    }

    /** Kernels whose shared-memory reduction assumes exactly 256 threads per block. */
    static final List<String> BLOCK_256 = List.of("kiln_sum_to", "kiln_softmax_xent_rows", "kiln_mean");

    /** Broadcast struct (rank, outShape[8], aStride[8], bStride[8]): the highest index + 1 read through a stride. */
    static long strided(int[] g, int strideOffset) {
        long last = 0;
        for (int d = 0; d < g[0]; d++) {
            last += (long) (g[1 + d] - 1) * g[strideOffset + d];
        }
        return last + 1;
    }

    static long outCount(int[] g) {
        long n = 1;
        for (int d = 0; d < g[0]; d++) {
            n *= g[1 + d];
        }
        return n;
    }

    /** The operation code is one the Java declaration ({@code enumName}) has. */
    private static void opCode(String kernel, Object code, int[] codes, String enumName) {
        int c = i(code);
        if (Arrays.stream(codes).noneMatch(k -> k == c)) {
            throw new CudaCallViolation(kernel + ": operation code " + c + " is none of " + enumName + "'s "
                    + Arrays.toString(codes));
        }
    }

    private static final int[] UNARY = Arrays.stream(UnaryOp.values()).mapToInt(UnaryOp::code).toArray();
    private static final int[] SCALAR = Arrays.stream(ScalarOp.values()).mapToInt(ScalarOp::code).toArray();
    private static final int[] BINARY = Arrays.stream(BinaryOp.values()).mapToInt(BinaryOp::code).toArray();
    private static final int[] ACTIVATION = Arrays.stream(Activation.values()).mapToInt(Activation::code).toArray();

    /** The device error flag an op-coded kernel reports an unknown code to. */
    private static Access errorFlag(int index) {
        return new Access(index, "error flag", Integer.BYTES, false);
    }

    private static void same(String kernel, String what, long want, long got) {
        if (want != got) {
            throw new CudaCallViolation(kernel + ": " + what + " is " + got + ", the shape implies " + want);
        }
    }

    private static final Map<String, Function<Object[], List<Access>>> RULES = Map.ofEntries(
            Map.entry("kiln_unary", a -> {
                opCode("kiln_unary", a[0], UNARY, "UnaryOp");
                return List.of(at(1, "x", l(a[3])), at(2, "y", l(a[3])), errorFlag(4));
            }),
            Map.entry("kiln_scalar", a -> {
                opCode("kiln_scalar", a[0], SCALAR, "ScalarOp");
                return List.of(at(1, "x", l(a[4])), at(3, "y", l(a[4])), errorFlag(5));
            }),
            Map.entry("kiln_binary", a -> {
                opCode("kiln_binary", a[0], BINARY, "BinaryOp");
                int[] g = (int[]) a[5];
                same("kiln_binary", "n", outCount(g), l(a[4]));
                return List.of(at(1, "a", strided(g, 9)), at(2, "b", strided(g, 17)), at(3, "out", l(a[4])), errorFlag(6));
            }),
            Map.entry("kiln_binary_flat", a -> {
                opCode("kiln_binary_flat", a[0], BINARY, "BinaryOp");
                return List.of(at(1, "a", l(a[4])), at(2, "b", l(a[4])), at(3, "out", l(a[4])), errorFlag(5));
            }),
            Map.entry("kiln_axpy", a -> List.of(at(1, "x", l(a[3])), at(2, "y", l(a[3])))),
            Map.entry("kiln_broadcast_to", a -> {
                int[] g = (int[]) a[3];
                same("kiln_broadcast_to", "n", outCount(g), l(a[2]));
                return List.of(at(0, "x", strided(g, 9)), at(1, "out", l(a[2])));
            }),
            Map.entry("kiln_sum_to", a -> {
                // Reduce: keptRank, keptSize[8], keptStride[8], redRank, redSize[8], redStride[8]
                int[] g = (int[]) a[4];
                long last = 0;
                long kept = 1;
                long red = 1;
                for (int d = 0; d < g[0]; d++) {
                    last += (long) (g[1 + d] - 1) * g[9 + d];
                    kept *= g[1 + d];
                }
                for (int d = 0; d < g[17]; d++) {
                    last += (long) (g[18 + d] - 1) * g[26 + d];
                    red *= g[18 + d];
                }
                same("kiln_sum_to", "outCount", kept, l(a[2]));
                same("kiln_sum_to", "redCount", red, l(a[3]));
                return List.of(at(0, "x", last + 1), at(1, "out", l(a[2])));
            }),
            Map.entry("kiln_argmax", a -> {
                long outer = i(a[1]);
                long extent = i(a[2]);
                long inner = i(a[3]);
                return List.of(at(0, "x", outer * extent * inner), at(4, "out", outer * inner));
            }),
            Map.entry("kiln_gather_rows", a -> {
                long row = i(a[1]);
                long rows = i(a[3]);
                // the row indices live on the device: at least one whole source row must exist
                return List.of(at(0, "src", row), new Access(2, "rows", rows * Integer.BYTES, false),
                        at(4, "dst", rows * row));
            }),
            Map.entry("kiln_softmax_xent_rows", a -> {
                long r = i(a[0]);
                long c = i(a[1]);
                return List.of(at(2, "logits", r * c), at(3, "targets", r), at(4, "probs", r * c), at(5, "rowLoss", r),
                        new Access(6, "error flag", Integer.BYTES, false));
            }),
            Map.entry("kiln_mean", a -> List.of(at(0, "v", i(a[1])), at(2, "out", 1))),
            Map.entry("kiln_softmax_xent_backward", a -> {
                long r = i(a[0]);
                long c = i(a[1]);
                return List.of(at(2, "probs", r * c), at(3, "targets", r), at(4, "dLoss", 1), at(5, "dLogits", r * c));
            }),
            Map.entry("kiln_bn_running_stats", a -> {
                long c = i(a[0]);
                return List.of(at(1, "saveMean", c), at(2, "saveInvStd", c), at(6, "runningMean", c), at(7, "runningVar", c),
                        nullable(8, "guard", 1), nullable(9, "skipped", 1));
            }),
            Map.entry("kiln_max_pool_backward", a -> {
                long nc = (long) i(a[0]) * i(a[1]);
                long in = nc * i(a[2]) * i(a[3]);
                long out = nc * i(a[4]) * i(a[5]);
                return List.of(at(12, "x", in), at(13, "y", out), at(14, "dy", out), at(15, "dx", in));
            }),
            Map.entry("kiln_copy_slice", a -> {
                long outer = i(a[0]);
                long inner = i(a[6]);
                int srcExtent = i(a[1]), srcStart = i(a[2]), dstExtent = i(a[3]), dstStart = i(a[4]), length = i(a[5]);
                if (srcStart < 0 || dstStart < 0 || length < 0 || srcStart + length > srcExtent
                        || dstStart + length > dstExtent) {
                    throw new CudaCallViolation("kiln_copy_slice: slice [" + srcStart + ", +" + length + ") of extent "
                            + srcExtent + " to [" + dstStart + ", +" + length + ") of extent " + dstExtent);
                }
                return List.of(at(7, "src", outer * srcExtent * inner), at(8, "dst", outer * dstExtent * inner));
            }),
            Map.entry("kiln_adaptive_avg_forward", a -> adaptive(a, "x", "y", null)),
            Map.entry("kiln_adaptive_avg_backward", a -> adaptive(a, "dy", "dx", null)),
            Map.entry("kiln_adaptive_max_forward", a -> adaptive(a, "x", "y", "indices")),
            Map.entry("kiln_adaptive_max_backward", a -> {
                long planes = i(a[0]);
                long in = planes * i(a[1]) * i(a[2]);
                long out = planes * i(a[3]) * i(a[4]);
                return List.of(at(5, "indices", out), at(6, "dy", out), at(7, "dx", in));
            }),
            Map.entry("kiln_upsample_nearest_forward", a -> {
                long in = (long) i(a[0]) * i(a[1]) * i(a[2]);
                long out = in * i(a[3]) * i(a[4]);
                return List.of(at(5, "x", in), at(6, "y", out));
            }),
            Map.entry("kiln_upsample_nearest_backward", a -> {
                long in = (long) i(a[0]) * i(a[1]) * i(a[2]);
                long out = in * i(a[3]) * i(a[4]);
                return List.of(at(5, "dy", out), at(6, "dx", in));
            }),
            Map.entry("kiln_adam", a -> {
                long n = l(a[12]);
                return List.of(at(8, "param", n), at(9, "grad", n), at(10, "expAvg", n), at(11, "expAvgSq", n));
            }),
            Map.entry("kiln_sgd_many", a -> {
                long[] t = (long[]) a[0];
                int max = CudaBackend.SGD_MAX_TENSORS;
                int count = (int) t[4 * max];
                if (count < 1 || count > max) {
                    throw new CudaCallViolation("kiln_sgd_many: table count " + count + " outside [1, " + max + "]");
                }
                boolean momentum = ((Float) a[6]) != 0f;
                List<Access> out = new ArrayList<>();
                for (int k = 0; k < count; k++) {
                    long n = t[3 * max + k];
                    out.add(new Access(-1 - k * 3, "param[" + k + "] @" + t[k], n * F, false));
                    out.add(new Access(-2 - k * 3, "grad[" + k + "] @" + t[max + k], n * F, false));
                    out.add(new Access(-3 - k * 3, "buf[" + k + "] @" + t[2 * max + k], momentum ? n * F : 0, !momentum));
                }
                out.add(nullable(1, "lrDevice", 1));
                out.add(nullable(3, "guard", 1));
                out.add(nullable(4, "skipped", 1));
                return out;
            }),
            Map.entry("kiln_bias_activation", a -> {
                opCode("kiln_bias_activation", a[0], ACTIVATION, "Activation");
                long n = l(a[1]);
                long c = i(a[2]);
                long inner = i(a[3]);
                if (c * inner == 0 || n % (c * inner) != 0) {
                    throw new CudaCallViolation("kiln_bias_activation: n=" + n + " is not a multiple of channels*inner=" + c * inner);
                }
                return List.of(at(4, "x", n), at(5, "bias", c), at(6, "y", n), errorFlag(7));
            }),
            Map.entry("kiln_activation_forward", a -> {
                opCode("kiln_activation_forward", a[0], ACTIVATION, "Activation");
                return List.of(at(1, "x", l(a[3])), at(2, "y", l(a[3])), errorFlag(4));
            }),
            Map.entry("kiln_activation_backward", a -> {
                opCode("kiln_activation_backward", a[0], ACTIVATION, "Activation");
                long n = l(a[5]);
                return List.of(at(1, "x", n), at(2, "y", n), at(3, "dy", n), at(4, "dx", n), errorFlag(6));
            }),
            Map.entry("kiln_bn_inference_activation", a -> {
                opCode("kiln_bn_inference_activation", a[0], ACTIVATION, "Activation");
                long n = l(a[1]);
                long c = i(a[2]);
                long spatial = i(a[3]);
                if (c * spatial == 0 || n % (c * spatial) != 0) {
                    throw new CudaCallViolation("kiln_bn_inference_activation: n=" + n + " is not a multiple of channels*spatial=" + c * spatial);
                }
                return List.of(at(4, "x", n), nullable(5, "gamma", c), nullable(6, "beta", c), at(7, "mean", c),
                        at(8, "var", c), at(10, "y", n), errorFlag(11));
            }));

    /**
     * The adaptive-pooling kernels (planes, inH, inW, outH, outW, then buffers from index 5): forward reads the input
     * and writes outputs (and indices), backward reads output-sized dy and writes the input-sized dx.
     */
    private static List<Access> adaptive(Object[] a, String first, String second, String third) {
        long planes = i(a[0]);
        long in = planes * i(a[1]) * i(a[2]);
        long out = planes * i(a[3]) * i(a[4]);
        boolean forward = third != null || first.equals("x");
        List<Access> r = new ArrayList<>();
        r.add(at(5, first, forward ? in : out));
        r.add(at(6, second, forward ? out : in));
        if (third != null) {
            r.add(at(7, third, out));
        }
        return r;
    }

    /** The accesses of a launch of {@code kernel}; a violation for a kernel without rules. */
    static List<Access> of(String kernel, Object[] args) {
        Function<Object[], List<Access>> rule = RULES.get(kernel);
        if (rule == null) {
            throw new CudaCallViolation(kernel + ": the checking stand-in has no extent rule for this kernel; add one to KernelExtents");
        }
        return rule.apply(args);
    }

    /** For sgd_many: the table address of a negative access index. */
    static long tableAddress(long[] table, int index) {
        int j = -1 - index;
        int k = j / 3;
        int which = j % 3;
        return table[which * CudaBackend.SGD_MAX_TENSORS + k];
    }

    static int ruleCount() {
        return RULES.size();
    }
}
