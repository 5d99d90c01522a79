package dev.kiln.conformance;

import dev.kiln.backend.Activation;
import dev.kiln.backend.AdaptivePoolGeometry;
import dev.kiln.backend.AdamHyper;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Buffer;
import dev.kiln.backend.ConvGeometry;
import dev.kiln.backend.Nullable;
import dev.kiln.backend.PoolGeometry;
import dev.kiln.backend.ScalarOp;
import dev.kiln.backend.SgdHyper;
import dev.kiln.backend.UnaryOp;
import dev.kiln.backend.UpsampleGeometry;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Parameter;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Calls that break the SPI's contract, for {@code rejectsMisuse}: generated from one valid call per op, with each
 * buffer argument in turn replaced by null (where the parameter is not {@link Nullable}), a closed buffer, a buffer
 * of another backend and a buffer one float too short; plus ranges and indices out of bounds, negative sizes and
 * outputs that are also inputs. Each must be an {@link IllegalArgumentException} before anything runs.
 */
final class MisuseCases {

    /** The SPI methods that are not ops on buffers, which have no valid-call entry. */
    static final Set<String> NOT_OPS = Set.of("name", "description", "synchronize", "beginCapture", "close");

    record Misuse(String name, Consumer<Backend> call) {
        @Override
        public String toString() {
            return name;
        }
    }

    private MisuseCases() {
    }

    static final ConvGeometry CG = new ConvGeometry(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1);
    static final PoolGeometry PG = new PoolGeometry(2, 3, 7, 6, 3, 3, 2, 2, 1, 1);
    static final AdaptivePoolGeometry AG = new AdaptivePoolGeometry(2, 3, 7, 6, 3, 4);
    static final UpsampleGeometry UG = new UpsampleGeometry(2, 3, 4, 5, 2, 3);
    static final BatchNormGeometry BG = new BatchNormGeometry(2, 3, 5);
    static final SgdHyper MOMENTUM = new SgdHyper(0.1f, 0.9f, 0f, false, 0f, true);
    static final AdamHyper ADAM = new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, false, 1);

    /** One valid call per op: the arguments, every buffer exactly as long as the op needs. */
    static Map<String, Function<Backend, Object[]>> validCalls() {
        Map<String, Function<Backend, Object[]>> m = new LinkedHashMap<>();
        long c = BG.channels();
        m.put("allocate", be -> new Object[] {4L});
        m.put("allocateUninitialized", be -> new Object[] {4L});
        m.put("upload", be -> new Object[] {new float[4], 1, 3});
        m.put("download", be -> new Object[] {be.allocate(4), 1L, new float[5], 2, 3});
        m.put("write", be -> new Object[] {new float[5], 2, be.allocate(4), 1L, 3});
        m.put("copy", be -> new Object[] {be.allocate(4), 1L, be.allocate(5), 2L, 3L});
        m.put("fill", be -> new Object[] {be.allocate(4), 1L, 3L, 1f});
        m.put("gatherRows", be -> new Object[] {be.allocate(12), 3, new int[] {3, 0}, be.allocate(6)});
        m.put("copySlice", be -> new Object[] {be.allocate(30), 2, 5, 1, be.allocate(24), 4, 2, 2, 3});
        m.put("unary", be -> new Object[] {UnaryOp.NEG, be.allocate(5), be.allocate(5), 5L});
        m.put("scalar", be -> new Object[] {ScalarOp.ADD, be.allocate(5), 1f, be.allocate(5), 5L});
        m.put("binary", be -> new Object[] {BinaryOp.ADD, be.allocate(6), new int[] {2, 3}, be.allocate(3),
                new int[] {1, 3}, be.allocate(6), new int[] {2, 3}});
        m.put("axpy", be -> new Object[] {1f, be.allocate(5), be.allocate(5), 5L});
        m.put("sumTo", be -> new Object[] {be.allocate(6), new int[] {2, 3}, be.allocate(3), new int[] {1, 3}});
        m.put("broadcastTo", be -> new Object[] {be.allocate(3), new int[] {1, 3}, be.allocate(6), new int[] {2, 3}});
        m.put("argmax", be -> new Object[] {be.allocate(12), 2, 3, 2, be.allocate(4)});
        m.put("gemm", be -> new Object[] {false, false, 3, 4, 5, 1f, be.allocate(15), be.allocate(20), 0f, be.allocate(12)});
        m.put("conv2dForward", be -> new Object[] {CG, be.allocate(CG.inputLength()), be.allocate(CG.weightLength()),
                be.allocate(CG.outChannels()), be.allocate(CG.outputLength())});
        m.put("conv2dBackwardData", be -> new Object[] {CG, be.allocate(CG.weightLength()),
                be.allocate(CG.outputLength()), be.allocate(CG.inputLength())});
        m.put("conv2dBackwardWeight", be -> new Object[] {CG, be.allocate(CG.inputLength()),
                be.allocate(CG.outputLength()), be.allocate(CG.weightLength())});
        m.put("conv2dBackwardBias", be -> new Object[] {CG, be.allocate(CG.outputLength()), be.allocate(CG.outChannels())});
        m.put("batchNormForwardTraining", be -> new Object[] {BG, be.allocate(BG.length()), be.allocate(c),
                be.allocate(c), 1e-5f, be.allocate(BG.length()), be.allocate(c), be.allocate(c)});
        m.put("batchNormForwardInference", be -> new Object[] {BG, Activation.SIGMOID, be.allocate(BG.length()),
                be.allocate(c), be.allocate(c), be.allocate(c), be.allocate(c), 1e-5f, be.allocate(BG.length())});
        m.put("batchNormBackward", be -> new Object[] {BG, be.allocate(BG.length()), be.allocate(BG.length()),
                be.allocate(c), be.allocate(c), be.allocate(c), be.allocate(BG.length()), be.allocate(c), be.allocate(c)});
        m.put("batchNormActivationForwardTraining", be -> new Object[] {BG, Activation.RELU, be.allocate(BG.length()),
                be.allocate(c), be.allocate(c), 1e-5f, be.allocate(BG.length()), be.allocate(c), be.allocate(c)});
        m.put("batchNormActivationBackward", be -> new Object[] {BG, Activation.RELU, be.allocate(BG.length()),
                be.allocate(BG.length()), be.allocate(BG.length()), be.allocate(c), be.allocate(c), be.allocate(c),
                be.allocate(BG.length()), be.allocate(c), be.allocate(c)});
        m.put("batchNormUpdateRunningStats", be -> new Object[] {BG, be.allocate(c), be.allocate(c), 1e-5f, 0.1,
                be.allocate(c), be.allocate(c), be.allocate(1), be.allocate(1)});
        m.put("avgPool2dForward", be -> new Object[] {PG, be.allocate(PG.inputLength()), be.allocate(PG.outputLength())});
        m.put("avgPool2dBackward", be -> new Object[] {PG, be.allocate(PG.outputLength()), be.allocate(PG.inputLength())});
        m.put("maxPool2dForward", be -> new Object[] {PG, be.allocate(PG.inputLength()), be.allocate(PG.outputLength())});
        m.put("maxPool2dBackward", be -> new Object[] {PG, be.allocate(PG.inputLength()), be.allocate(PG.outputLength()),
                be.allocate(PG.outputLength()), be.allocate(PG.inputLength())});
        m.put("adaptiveAvgPool2dForward", be -> new Object[] {AG, be.allocate(AG.inputLength()), be.allocate(AG.outputLength())});
        m.put("adaptiveAvgPool2dBackward", be -> new Object[] {AG, be.allocate(AG.outputLength()), be.allocate(AG.inputLength())});
        m.put("adaptiveMaxPool2dForward", be -> new Object[] {AG, be.allocate(AG.inputLength()), be.allocate(AG.outputLength()),
                be.allocate(AG.outputLength())});
        m.put("adaptiveMaxPool2dBackward", be -> new Object[] {AG, be.allocate(AG.outputLength()),
                be.allocate(AG.outputLength()), be.allocate(AG.inputLength())});
        m.put("upsampleNearest2dForward", be -> new Object[] {UG, be.allocate(UG.inputLength()), be.allocate(UG.outputLength())});
        m.put("upsampleNearest2dBackward", be -> new Object[] {UG, be.allocate(UG.outputLength()), be.allocate(UG.inputLength())});
        m.put("activationForward", be -> new Object[] {Activation.TANH, be.allocate(5), be.allocate(5), 5L});
        m.put("activationBackward", be -> new Object[] {Activation.TANH, be.allocate(5), be.allocate(5),
                be.allocate(5), be.allocate(5), 5L});
        m.put("addActivation", be -> new Object[] {Activation.RELU, be.allocate(5), be.allocate(5), be.allocate(5), 5L});
        m.put("biasActivation", be -> new Object[] {Activation.RELU, 2, 3, 4, be.allocate(24), be.allocate(3),
                be.allocate(24)});
        m.put("softmaxForward", be -> new Object[] {2, 3, be.allocate(6), be.allocate(6)});
        m.put("softmaxBackward", be -> new Object[] {2, 3, be.allocate(6), be.allocate(6), be.allocate(6)});
        m.put("softmaxCrossEntropyForward", be -> new Object[] {2, 3, be.allocate(6), be.allocate(2), be.allocate(6),
                be.allocate(1)});
        m.put("softmaxCrossEntropyBackward", be -> new Object[] {2, 3, be.allocate(6), be.allocate(2), be.allocate(1),
                be.allocate(6)});
        m.put("sgdStepMany", be -> new Object[] {MOMENTUM, be.allocate(1), be.allocate(1), be.allocate(1),
                new Buffer[] {be.allocate(5), be.allocate(3)}, new Buffer[] {be.allocate(5), be.allocate(3)},
                new Buffer[] {be.allocate(5), be.allocate(3)}, new long[] {5, 3}});
        m.put("adamStep", be -> new Object[] {ADAM, be.allocate(5), be.allocate(5), be.allocate(5), be.allocate(5), 5L});
        return m;
    }

    static Method method(String name) {
        for (Method m : Backend.class.getMethods()) {
            if (m.getName().equals(name)) {
                return m;
            }
        }
        throw new IllegalArgumentException("no Backend." + name);
    }

    /** Runs {@code name} with {@code args}, unwrapping what the op threw. */
    static Object call(Backend be, String name, Object[] args) {
        try {
            return method(name).invoke(be, args);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new AssertionError(e.getCause());
        } catch (IllegalAccessException e) {
            throw new AssertionError(e);
        }
    }

    /** A buffer that belongs to no backend the suite tests (a buffer of another device). */
    static Buffer foreign(long length) {
        Backend other = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (p, m, a) -> switch (m.getName()) {
                    case "name" -> "foreign";
                    case "toString" -> "foreign backend";
                    case "hashCode" -> 0;
                    case "equals" -> a[0] == p;
                    default -> throw new UnsupportedOperationException(m.getName());
                });
        return new Buffer() {
            @Override
            public long length() {
                return length;
            }

            @Override
            public Backend backend() {
                return other;
            }

            @Override
            public boolean isClosed() {
                return false;
            }

            @Override
            public void close() {
            }
        };
    }

    /** Every generated misuse, then the hand-written ones (ranges, indices, sizes, aliasing). */
    static List<Misuse> all() {
        List<Misuse> out = new ArrayList<>();
        validCalls().forEach((name, valid) -> {
            Method m = method(name);
            Parameter[] ps = m.getParameters();
            for (int i = 0; i < ps.length; i++) {
                int at = i;
                boolean nullable = ps[i].isAnnotationPresent(Nullable.class);
                if (ps[i].getType() == Buffer.class) {
                    if (!nullable) {
                        out.add(mutate(name, valid, "argument " + at + " null", (be, args) -> args[at] = null));
                    }
                    out.add(mutate(name, valid, "argument " + at + " closed", (be, args) -> {
                        Buffer b = be.allocate(((Buffer) args[at]).length());
                        b.close();
                        args[at] = b;
                    }));
                    out.add(mutate(name, valid, "argument " + at + " of another backend",
                            (be, args) -> args[at] = foreign(((Buffer) args[at]).length())));
                    out.add(mutate(name, valid, "argument " + at + " one float too short",
                            (be, args) -> args[at] = be.allocate(((Buffer) args[at]).length() - 1)));
                } else if (ps[i].getType() == Buffer[].class) {
                    for (String what : new String[] {"null", "closed", "of another backend", "one float too short"}) {
                        out.add(mutate(name, valid, "argument " + at + "[1] " + what, (be, args) -> {
                            Buffer[] bs = ((Buffer[]) args[at]).clone();
                            long n = bs[1].length();
                            bs[1] = switch (what) {
                                case "null" -> null;
                                case "closed" -> {
                                    Buffer b = be.allocate(n);
                                    b.close();
                                    yield b;
                                }
                                case "of another backend" -> foreign(n);
                                default -> be.allocate(n - 1);
                            };
                            args[at] = bs;
                        }));
                    }
                } else if (!ps[i].getType().isPrimitive() && !nullable) {
                    out.add(mutate(name, valid, "argument " + at + " (" + ps[i].getType().getSimpleName() + ") null",
                            (be, args) -> args[at] = null));
                }
            }
        });
        out.addAll(ranges());
        out.addAll(aliasing());
        return out;
    }

    private interface Mutation {
        void apply(Backend be, Object[] args);
    }

    private static Misuse mutate(String op, Function<Backend, Object[]> valid, String what, Mutation mutation) {
        return new Misuse(op + ": " + what, be -> {
            Object[] args = valid.apply(be);
            Object[] allocated = args.clone();
            try {
                mutation.apply(be, args);
                call(be, op, args);
            } finally {
                releaseBuffers(allocated);
            }
        });
    }

    /** The valid call's buffers are freed by the case itself, so a misuse leaves nothing for the leak detector. */
    static void releaseBuffers(Object[] args) {
        for (Object a : args) {
            if (a instanceof Buffer b) {
                b.close();
            } else if (a instanceof Buffer[] bs) {
                for (Buffer b : bs) {
                    if (b != null) {
                        b.close();
                    }
                }
            }
        }
    }

    private static List<Misuse> ranges() {
        return List.of(
                new Misuse("download: range past the end of src", be -> be.download(be.allocate(4), 2, new float[8], 0, 3)),
                new Misuse("download: range past the end of dst", be -> be.download(be.allocate(8), 0, new float[4], 2, 3)),
                new Misuse("download: negative offset", be -> be.download(be.allocate(4), -1, new float[4], 0, 2)),
                new Misuse("write: range past the end", be -> be.write(new float[8], 0, be.allocate(4), 2, 3)),
                new Misuse("upload: negative length", be -> be.upload(new float[4], 0, -1)),
                new Misuse("copy: range past the end of dst", be -> be.copy(be.allocate(8), 0, be.allocate(4), 2, 3)),
                new Misuse("copy: overlapping ranges of one buffer", be -> {
                    Buffer b = be.allocate(8);
                    be.copy(b, 0, b, 2, 4);
                }),
                new Misuse("fill: range past the end", be -> be.fill(be.allocate(4), 2, 3, 1f)),
                new Misuse("gatherRows: row index past the end", be -> be.gatherRows(be.allocate(12), 3, new int[] {0, 4}, be.allocate(6))),
                new Misuse("gatherRows: negative row index", be -> be.gatherRows(be.allocate(12), 3, new int[] {-1}, be.allocate(3))),
                new Misuse("allocate: negative length", be -> be.allocate(-1)),
                new Misuse("allocateUninitialized: negative length", be -> be.allocateUninitialized(-1)),
                new Misuse("unary: negative n", be -> be.unary(UnaryOp.NEG, be.allocate(4), be.allocate(4), -1)),
                new Misuse("binary: shapes that do not broadcast", be -> be.binary(BinaryOp.ADD, be.allocate(6), new int[] {2, 3},
                        be.allocate(2), new int[] {1, 2}, be.allocate(6), new int[] {2, 3})),
                new Misuse("binary: ranks differ", be -> be.binary(BinaryOp.ADD, be.allocate(6), new int[] {6},
                        be.allocate(6), new int[] {2, 3}, be.allocate(6), new int[] {2, 3})),
                new Misuse("sumTo: shape that is not a reduction", be -> be.sumTo(be.allocate(6), new int[] {2, 3}, be.allocate(2), new int[] {2, 1, 1})),
                new Misuse("argmax: extent 0", be -> be.argmax(be.allocate(4), 2, 0, 2, be.allocate(4))),
                new Misuse("gemm: negative m", be -> be.gemm(false, false, -1, 4, 5, 1f, be.allocate(15), be.allocate(20), 0f, be.allocate(12))),
                new Misuse("biasActivation: zero channels", be -> be.biasActivation(Activation.TANH, 2, 0, 4,
                        be.allocate(24), be.allocate(3), be.allocate(24))),
                new Misuse("softmaxCrossEntropyForward: zero rows", be -> be.softmaxCrossEntropyForward(0, 3,
                        be.allocate(6), be.allocate(2), be.allocate(6), be.allocate(1))),
                new Misuse("batchNormUpdateRunningStats: one value per channel", be -> be.batchNormUpdateRunningStats(
                        new BatchNormGeometry(1, 3, 1), be.allocate(3), be.allocate(3), 1e-5f, 0.1, be.allocate(3), be.allocate(3),
                        null, null)),
                new Misuse("sgdStepMany: lengths and params differ", be -> be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false),
                        null, null, null, new Buffer[] {be.allocate(5), be.allocate(5)}, new Buffer[] {be.allocate(5), be.allocate(5)},
                        null, new long[] {5})),
                new Misuse("sgdStepMany: momentum buffers missing with momentum", be -> be.sgdStepMany(MOMENTUM,
                        null, null, null, new Buffer[] {be.allocate(5)}, new Buffer[] {be.allocate(5)}, null, new long[] {5})),
                new Misuse("sgdStepMany: guard of length 0", be -> be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false),
                        null, be.allocate(0), null, new Buffer[] {be.allocate(5)}, new Buffer[] {be.allocate(5)}, null, new long[] {5})),
                new Misuse("adamStep: step 0", be -> be.adamStep(new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, false, 0),
                        be.allocate(5), be.allocate(5), be.allocate(5), be.allocate(5), 5)));
    }

    private static List<Misuse> aliasing() {
        return List.of(
                new Misuse("gatherRows: dst is src", be -> {
                    Buffer b = be.allocate(12);
                    be.gatherRows(b, 3, new int[] {0}, b);
                }),
                new Misuse("binary: out is a broadcast input", be -> {
                    Buffer b = be.allocate(6);
                    be.binary(BinaryOp.ADD, be.allocate(6), new int[] {2, 3}, b, new int[] {1, 3}, b, new int[] {2, 3});
                }),
                new Misuse("sumTo: out is x", be -> {
                    Buffer b = be.allocate(6);
                    be.sumTo(b, new int[] {2, 3}, b, new int[] {1, 3});
                }),
                new Misuse("gemm: c is a", be -> {
                    Buffer a = be.allocate(16);
                    be.gemm(false, false, 4, 4, 4, 1f, a, be.allocate(16), 0f, a);
                }),
                new Misuse("conv2dForward: y is x", be -> {
                    ConvGeometry g = new ConvGeometry(1, 2, 4, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1);
                    Buffer b = be.allocate(g.inputLength());
                    be.conv2dForward(g, b, be.allocate(g.weightLength()), null, b);
                }),
                new Misuse("batchNormForwardTraining: y is x", be -> {
                    Buffer x = be.allocate(BG.length());
                    be.batchNormForwardTraining(BG, x, null, null, 1e-5f, x, be.allocate(3), be.allocate(3));
                }),
                new Misuse("batchNormBackward: dx is dy", be -> {
                    Buffer dy = be.allocate(BG.length());
                    be.batchNormBackward(BG, be.allocate(BG.length()), dy, null, be.allocate(3), be.allocate(3), dy, null, null);
                }),
                new Misuse("batchNormUpdateRunningStats: runningMean is saveMean", be -> {
                    Buffer m = be.allocate(3);
                    be.batchNormUpdateRunningStats(BG, m, be.allocate(3), 1e-5f, 0.1, m, be.allocate(3), null, null);
                }),
                new Misuse("copySlice: dst is src", be -> {
                    Buffer b = be.allocate(24);
                    be.copySlice(b, 2, 4, 0, b, 4, 2, 2, 3);
                }),
                new Misuse("adaptiveMaxPool2dForward: indices is y", be -> {
                    Buffer y = be.allocate(AG.outputLength());
                    be.adaptiveMaxPool2dForward(AG, be.allocate(AG.inputLength()), y, y);
                }),
                new Misuse("upsampleNearest2dBackward: dx is dy", be -> {
                    Buffer b = be.allocate(UG.outputLength());
                    be.upsampleNearest2dBackward(UG, b, b);
                }),
                new Misuse("conv2dForward: grouped weight too short", be -> {
                    ConvGeometry g = new ConvGeometry(1, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2);
                    be.conv2dForward(g, be.allocate(g.inputLength()), be.allocate(g.weightLength() - 1), null,
                            be.allocate(g.outputLength()));
                }),
                new Misuse("maxPool2dBackward: dx is x", be -> {
                    Buffer x = be.allocate(PG.inputLength());
                    be.maxPool2dBackward(PG, x, be.allocate(PG.outputLength()), be.allocate(PG.outputLength()), x);
                }),
                new Misuse("activationBackward: dx is y", be -> {
                    Buffer y = be.allocate(5);
                    be.activationBackward(Activation.TANH, be.allocate(5), y, be.allocate(5), y, 5);
                }),
                new Misuse("softmaxForward: y is x", be -> {
                    Buffer x = be.allocate(6);
                    be.softmaxForward(2, 3, x, x);
                }),
                new Misuse("softmaxCrossEntropyForward: probs is logits", be -> {
                    Buffer x = be.allocate(6);
                    be.softmaxCrossEntropyForward(2, 3, x, be.allocate(2), x, be.allocate(1));
                }),
                new Misuse("sgdStepMany: the same parameter twice", be -> {
                    Buffer p = be.allocate(5);
                    be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false), null, null, null, new Buffer[] {p, p},
                            new Buffer[] {be.allocate(5), be.allocate(5)}, null, new long[] {5, 5});
                }),
                new Misuse("sgdStepMany: a parameter is its gradient", be -> {
                    Buffer p = be.allocate(5);
                    be.sgdStepMany(new SgdHyper(0.1f, 0f, 0f, false, 0f, false), null, null, null, new Buffer[] {p},
                            new Buffer[] {p}, null, new long[] {5});
                }),
                new Misuse("adamStep: expAvg is expAvgSq", be -> {
                    Buffer m = be.allocate(5);
                    be.adamStep(ADAM, be.allocate(5), be.allocate(5), m, m, 5);
                }));
    }
}
