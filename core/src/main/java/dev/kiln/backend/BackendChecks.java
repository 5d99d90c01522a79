package dev.kiln.backend;

import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * The argument checks of every {@link Backend} op, in one place: one method per op, with the op's name and parameters,
 * that throws the {@link IllegalArgumentException} the SPI promises (naming the op, the argument and, for lengths,
 * expected and found) and otherwise does nothing. Every backend calls it first thing in each op, and the graph
 * recorder calls it when an op is recorded, so a bad call fails where it is made, never at a replay. After it a
 * backend may use its buffers without checking them again.
 *
 * <p>Checks that depend on data on the device (a class target outside its range) stay with the backend.
 */
public final class BackendChecks {

    private final Backend owner;

    /** Checks buffers against {@code owner}: a buffer must have been allocated by that backend instance. */
    public BackendChecks(Backend owner) {
        this.owner = owner;
    }

    // ------------------------------------------------------------------------------------------------ memory

    public void allocate(long length) {
        count("allocate", "length", length);
    }

    public void allocateUninitialized(long length) {
        count("allocateUninitialized", "length", length);
    }

    public void upload(float[] src, int offset, int length) {
        String op = "upload";
        required(op, "src", src);
        range(op, "src", offset, length, src.length);
    }

    public void download(Buffer src, long srcOffset, float[] dst, int dstOffset, int length) {
        String op = "download";
        buffer(op, "src", src, 0);
        required(op, "dst", dst);
        range(op, "src", srcOffset, length, src.length());
        range(op, "dst", dstOffset, length, dst.length);
    }

    public void write(float[] src, int srcOffset, Buffer dst, long dstOffset, int length) {
        String op = "write";
        required(op, "src", src);
        buffer(op, "dst", dst, 0);
        range(op, "src", srcOffset, length, src.length);
        range(op, "dst", dstOffset, length, dst.length());
    }

    public void copy(Buffer src, long srcOffset, Buffer dst, long dstOffset, long length) {
        String op = "copy";
        buffer(op, "src", src, 0);
        buffer(op, "dst", dst, 0);
        range(op, "src", srcOffset, length, src.length());
        range(op, "dst", dstOffset, length, dst.length());
        if (src == dst && length > 0 && srcOffset < dstOffset + length && dstOffset < srcOffset + length) {
            throw new IllegalArgumentException(op + ": ranges [" + srcOffset + ", " + (srcOffset + length) + ") and ["
                    + dstOffset + ", " + (dstOffset + length) + ") of one buffer overlap");
        }
    }

    public void fill(Buffer dst, long offset, long length, float value) {
        String op = "fill";
        buffer(op, "dst", dst, 0);
        range(op, "dst", offset, length, dst.length());
    }

    public void copySlice(Buffer src, int outer, int srcExtent, int srcStart, Buffer dst, int dstExtent, int dstStart,
                          int length, int inner) {
        String op = "copySlice";
        count(op, "outer", outer);
        count(op, "inner", inner);
        count(op, "length", length);
        count(op, "srcExtent", srcExtent);
        count(op, "dstExtent", dstExtent);
        range(op, "src's extent", srcStart, length, srcExtent);
        range(op, "dst's extent", dstStart, length, dstExtent);
        buffer(op, "src", src, (long) outer * srcExtent * inner);
        buffer(op, "dst", dst, (long) outer * dstExtent * inner);
        distinct(op, "dst", dst, "src", src);
    }

    public void gatherRows(Buffer src, int rowLength, int[] rows, Buffer dst) {
        String op = "gatherRows";
        required(op, "rows", rows);
        count(op, "rowLength", rowLength);
        buffer(op, "src", src, 0);
        buffer(op, "dst", dst, (long) rows.length * rowLength);
        distinct(op, "dst", dst, "src", src);
        long srcRows = rowLength == 0 ? Long.MAX_VALUE : src.length() / rowLength;
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] < 0 || rows[i] >= srcRows) {
                throw new IllegalArgumentException(op + ": rows[" + i + "] = " + rows[i] + " is outside [0, " + srcRows
                        + ") (src of " + src.length() + " floats, rows of " + rowLength + ")");
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ element-wise

    public void unary(UnaryOp kind, Buffer x, Buffer y, long n) {
        String op = "unary";
        required(op, "op", kind);
        elementwise(op, n, "x", x, "y", y);
    }

    public void scalar(ScalarOp kind, Buffer x, float s, Buffer y, long n) {
        String op = "scalar";
        required(op, "op", kind);
        elementwise(op, n, "x", x, "y", y);
    }

    public void binary(BinaryOp kind, Buffer a, int[] aShape, Buffer b, int[] bShape, Buffer out, int[] outShape) {
        String op = "binary";
        required(op, "op", kind);
        broadcastable(op, outShape, "aShape", aShape);
        broadcastable(op, outShape, "bShape", bShape);
        buffer(op, "a", a, volume(aShape));
        buffer(op, "b", b, volume(bShape));
        buffer(op, "out", out, volume(outShape));
        if (out == a && !Arrays.equals(aShape, outShape) || out == b && !Arrays.equals(bShape, outShape)) {
            throw new IllegalArgumentException(op + ": out may be an input only when that input has the output's shape "
                    + Arrays.toString(outShape) + " (a " + Arrays.toString(aShape) + ", b " + Arrays.toString(bShape) + ")");
        }
    }

    public void axpy(float alpha, Buffer x, Buffer y, long n) {
        elementwise("axpy", n, "x", x, "y", y);
    }

    // ------------------------------------------------------------------------------------------------ reductions

    public void sumTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        broadcastable("sumTo", xShape, "outShape", outShape);
        new OneOutput("sumTo").output("out", out, volume(outShape), in("x", x, volume(xShape)));
    }

    public void broadcastTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        broadcastable("broadcastTo", outShape, "xShape", xShape);
        new OneOutput("broadcastTo").output("out", out, volume(outShape), in("x", x, volume(xShape)));
    }

    public void argmax(Buffer x, int outer, int extent, int inner, Buffer out) {
        String op = "argmax";
        if (outer < 0 || extent < 1 || inner < 0) {
            throw new IllegalArgumentException(op + ": need outer >= 0, extent >= 1, inner >= 0, got (" + outer + ", "
                    + extent + ", " + inner + ")");
        }
        new OneOutput(op).output("out", out, (long) outer * inner, in("x", x, (long) outer * extent * inner));
    }

    // ------------------------------------------------------------------------------------------------ dense

    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, Buffer a, Buffer b, float beta,
                     Buffer c) {
        String op = "gemm";
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException(op + ": m, n, k must be >= 0, got (" + m + ", " + n + ", " + k + ")");
        }
        new OneOutput(op).output("c", c, (long) m * n, in("a", a, (long) m * k), in("b", b, (long) k * n));
    }

    // ------------------------------------------------------------------------------------------------ convolution

    public void conv2dForward(ConvGeometry g, Buffer x, Buffer w, Buffer bias, Buffer y) {
        present("conv2dForward", g).output("y", y, g.outputLength(), in("x", x, g.inputLength()),
                in("w", w, g.weightLength()), optionalIn("bias", bias, g.outChannels()));
    }

    public void conv2dBackwardData(ConvGeometry g, Buffer w, Buffer dy, Buffer dx) {
        present("conv2dBackwardData", g).output("dx", dx, g.inputLength(), in("w", w, g.weightLength()),
                in("dy", dy, g.outputLength()));
    }

    public void conv2dBackwardWeight(ConvGeometry g, Buffer x, Buffer dy, Buffer dw) {
        present("conv2dBackwardWeight", g).output("dw", dw, g.weightLength(), in("x", x, g.inputLength()),
                in("dy", dy, g.outputLength()));
    }

    public void conv2dBackwardBias(ConvGeometry g, Buffer dy, Buffer db) {
        present("conv2dBackwardBias", g).output("db", db, g.outChannels(), in("dy", dy, g.outputLength()));
    }

    // ------------------------------------------------------------------------------------------------ batch norm

    public void batchNormForwardTraining(BatchNormGeometry g, Buffer x, Buffer gamma, Buffer beta, float eps, Buffer y,
                                         Buffer saveMean, Buffer saveInvStd) {
        String op = "batchNormForwardTraining";
        required(op, "geometry", g);
        int c = g.channels();
        buffers(op, g.length(), "x", x, "y", y);
        affine(op, c, gamma, beta);
        buffers(op, c, "saveMean", saveMean, "saveInvStd", saveInvStd);
        distinct(op, "y", y, "x", x, "gamma", gamma, "beta", beta, "saveMean", saveMean, "saveInvStd", saveInvStd);
        distinct(op, "saveMean", saveMean, "x", x, "gamma", gamma, "beta", beta, "saveInvStd", saveInvStd);
        distinct(op, "saveInvStd", saveInvStd, "x", x, "gamma", gamma, "beta", beta);
    }

    public void batchNormForwardInference(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma, Buffer beta,
                                          Buffer mean, Buffer var, float eps, Buffer y) {
        String op = "batchNormForwardInference";
        required(op, "geometry", g);
        required(op, "activation", a);
        int c = g.channels();
        buffers(op, g.length(), "x", x, "y", y);
        affine(op, c, gamma, beta);
        buffers(op, c, "mean", mean, "var", var);
        distinct(op, "y", y, "gamma", gamma, "beta", beta, "mean", mean, "var", var);
    }

    public void batchNormBackward(BatchNormGeometry g, Buffer x, Buffer dy, Buffer gamma, Buffer saveMean,
                                  Buffer saveInvStd, Buffer dx, Buffer dGamma, Buffer dBeta) {
        String op = "batchNormBackward";
        required(op, "geometry", g);
        int c = g.channels();
        buffers(op, g.length(), "x", x, "dy", dy);
        optional(op, "gamma", gamma, c);
        buffers(op, c, "saveMean", saveMean, "saveInvStd", saveInvStd);
        optional(op, "dx", dx, g.length());
        optional(op, "dGamma", dGamma, c);
        optional(op, "dBeta", dBeta, c);
        Object[] inputs = {"x", x, "dy", dy, "gamma", gamma, "saveMean", saveMean, "saveInvStd", saveInvStd};
        distinct(op, "dx", dx, inputs);
        distinct(op, "dGamma", dGamma, inputs);
        distinct(op, "dBeta", dBeta, inputs);
        if (dGamma != null && (dGamma == dx || dGamma == dBeta) || dx != null && dx == dBeta) {
            throw new IllegalArgumentException(op + ": dx, dGamma and dBeta must be distinct buffers");
        }
    }

    public void batchNormActivationForwardTraining(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma,
                                                   Buffer beta, float eps, Buffer y, Buffer saveMean,
                                                   Buffer saveInvStd) {
        String op = "batchNormActivationForwardTraining";
        required(op, "activation", a);
        required(op, "geometry", g);
        int c = g.channels();
        buffers(op, g.length(), "x", x, "y", y);
        affine(op, c, gamma, beta);
        buffers(op, c, "saveMean", saveMean, "saveInvStd", saveInvStd);
        distinct(op, "y", y, "x", x, "gamma", gamma, "beta", beta, "saveMean", saveMean, "saveInvStd", saveInvStd);
        distinct(op, "saveMean", saveMean, "x", x, "gamma", gamma, "beta", beta, "saveInvStd", saveInvStd);
        distinct(op, "saveInvStd", saveInvStd, "x", x, "gamma", gamma, "beta", beta);
    }

    public void batchNormActivationBackward(BatchNormGeometry g, Activation a, Buffer x, Buffer y, Buffer dy,
                                            Buffer gamma, Buffer saveMean, Buffer saveInvStd, Buffer dx,
                                            Buffer dGamma, Buffer dBeta) {
        String op = "batchNormActivationBackward";
        required(op, "activation", a);
        required(op, "geometry", g);
        int c = g.channels();
        buffers(op, g.length(), "x", x, "y", y, "dy", dy);
        optional(op, "gamma", gamma, c);
        buffers(op, c, "saveMean", saveMean, "saveInvStd", saveInvStd);
        optional(op, "dx", dx, g.length());
        optional(op, "dGamma", dGamma, c);
        optional(op, "dBeta", dBeta, c);
        Object[] inputs = {"x", x, "y", y, "dy", dy, "gamma", gamma, "saveMean", saveMean, "saveInvStd", saveInvStd};
        distinct(op, "dx", dx, inputs);
        distinct(op, "dGamma", dGamma, inputs);
        distinct(op, "dBeta", dBeta, inputs);
        if (dGamma != null && (dGamma == dx || dGamma == dBeta) || dx != null && dx == dBeta) {
            throw new IllegalArgumentException(op + ": dx, dGamma and dBeta must be distinct buffers");
        }
    }

    public void batchNormUpdateRunningStats(BatchNormGeometry g, Buffer saveMean, Buffer saveInvStd, float eps,
                                            double factor, Buffer runningMean, Buffer runningVar, Buffer guard,
                                            Buffer skipped) {
        String op = "batchNormUpdateRunningStats";
        required(op, "geometry", g);
        if (g.valuesPerChannel() < 2) {
            throw new IllegalArgumentException(op + ": the unbiased running variance needs more than 1 value per"
                    + " channel, got n=" + g.n() + " spatial=" + g.spatial());
        }
        buffers(op, g.channels(), "saveMean", saveMean, "saveInvStd", saveInvStd, "runningMean", runningMean,
                "runningVar", runningVar);
        distinct(op, "runningMean", runningMean, "saveMean", saveMean, "saveInvStd", saveInvStd, "runningVar", runningVar);
        distinct(op, "runningVar", runningVar, "saveMean", saveMean, "saveInvStd", saveInvStd);
        optional(op, "guard", guard, 1);
        optional(op, "skipped", skipped, 1);
        distinct(op, "skipped", skipped, "guard", guard, "runningMean", runningMean, "runningVar", runningVar,
                "saveMean", saveMean, "saveInvStd", saveInvStd);
    }

    // ------------------------------------------------------------------------------------------------ pooling

    public void avgPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        present("avgPool2dForward", g).output("y", y, g.outputLength(), in("x", x, g.inputLength()));
    }

    public void avgPool2dBackward(PoolGeometry g, Buffer dy, Buffer dx) {
        present("avgPool2dBackward", g).output("dx", dx, g.inputLength(), in("dy", dy, g.outputLength()));
    }

    public void maxPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        present("maxPool2dForward", g).output("y", y, g.outputLength(), in("x", x, g.inputLength()));
    }

    public void maxPool2dBackward(PoolGeometry g, Buffer x, Buffer y, Buffer dy, Buffer dx) {
        present("maxPool2dBackward", g).output("dx", dx, g.inputLength(), in("x", x, g.inputLength()),
                in("y", y, g.outputLength()), in("dy", dy, g.outputLength()));
    }

    public void adaptiveAvgPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y) {
        present("adaptiveAvgPool2dForward", g).output("y", y, g.outputLength(), in("x", x, g.inputLength()));
    }

    public void adaptiveAvgPool2dBackward(AdaptivePoolGeometry g, Buffer dy, Buffer dx) {
        present("adaptiveAvgPool2dBackward", g).output("dx", dx, g.inputLength(), in("dy", dy, g.outputLength()));
    }

    public void adaptiveMaxPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y, Buffer indices) {
        present("adaptiveMaxPool2dForward", g).output("y", y, g.outputLength(), in("x", x, g.inputLength()));
        buffer("adaptiveMaxPool2dForward", "indices", indices, g.outputLength());
        distinct("adaptiveMaxPool2dForward", "indices", indices, "x", x, "y", y);
    }

    public void adaptiveMaxPool2dBackward(AdaptivePoolGeometry g, Buffer indices, Buffer dy, Buffer dx) {
        present("adaptiveMaxPool2dBackward", g).output("dx", dx, g.inputLength(), in("indices", indices, g.outputLength()),
                in("dy", dy, g.outputLength()));
    }

    // ------------------------------------------------------------------------------------------------ upsampling

    public void upsampleNearest2dForward(UpsampleGeometry g, Buffer x, Buffer y) {
        present("upsampleNearest2dForward", g).output("y", y, g.outputLength(), in("x", x, g.inputLength()));
    }

    public void upsampleNearest2dBackward(UpsampleGeometry g, Buffer dy, Buffer dx) {
        present("upsampleNearest2dBackward", g).output("dx", dx, g.inputLength(), in("dy", dy, g.outputLength()));
    }

    // ------------------------------------------------------------------------------------------------ activations

    public void activationForward(Activation a, Buffer x, Buffer y, long n) {
        String op = "activationForward";
        required(op, "activation", a);
        elementwise(op, n, "x", x, "y", y);
    }

    public void activationBackward(Activation a, Buffer x, Buffer y, Buffer dy, Buffer dx, long n) {
        String op = "activationBackward";
        required(op, "activation", a);
        count(op, "n", n);
        buffers(op, n, "x", x, "y", y, "dy", dy, "dx", dx);
        distinct(op, "dx", dx, "x", x, "y", y);
    }

    public void addActivation(Activation a, Buffer x1, Buffer x2, Buffer y, long n) {
        String op = "addActivation";
        required(op, "activation", a);
        count(op, "n", n);
        buffers(op, n, "x1", x1, "x2", x2, "y", y);
    }

    public void biasActivation(Activation a, int outer, int channels, int inner, Buffer x, Buffer bias, Buffer y) {
        String op = "biasActivation";
        required(op, "activation", a);
        if (outer < 0 || channels < 1 || inner < 1) {
            throw new IllegalArgumentException(op + ": need outer >= 0, channels >= 1 and inner >= 1, got (" + outer
                    + ", " + channels + ", " + inner + ")");
        }
        long n = (long) outer * channels * inner;
        buffer(op, "x", x, n);
        buffer(op, "bias", bias, channels);
        buffer(op, "y", y, n);
        distinct(op, "y", y, "bias", bias);
    }

    public void softmaxForward(int rows, int cols, Buffer x, Buffer y) {
        rowwise("softmaxForward", rows, cols, 0, "y", y, "x", x);
    }

    public void softmaxBackward(int rows, int cols, Buffer y, Buffer dy, Buffer dx) {
        rowwise("softmaxBackward", rows, cols, 0, "dx", dx, "y", y, "dy", dy);
    }

    public void softmaxCrossEntropyForward(int rows, int classes, Buffer logits, Buffer targets, Buffer probs,
                                           Buffer loss) {
        rowwise("softmaxCrossEntropyForward", rows, classes, 1, "probs", probs, "logits", logits);
        perRow("softmaxCrossEntropyForward", rows, targets, "loss", loss, "probs", probs, "logits", logits);
    }

    public void softmaxCrossEntropyBackward(int rows, int classes, Buffer probs, Buffer targets, Buffer dLoss,
                                            Buffer dLogits) {
        rowwise("softmaxCrossEntropyBackward", rows, classes, 1, "dLogits", dLogits, "probs", probs);
        perRow("softmaxCrossEntropyBackward", rows, targets, "dLoss", dLoss, "dLogits", dLogits, "probs", probs);
    }

    /** A {@code (rows, cols)} op: every input of {@code inputs} (name, buffer pairs) and {@code out} hold it. */
    private void rowwise(String op, int rows, int cols, int minRows, String outName, Buffer out, Object... inputs) {
        long n = matrix(op, rows, cols, minRows);
        buffers(op, n, inputs);
        buffer(op, outName, out, n);
        distinct(op, outName, out, inputs);
    }

    /** The class targets (one per row) and a one-float loss of a cross-entropy op, apart from its matrices. */
    private void perRow(String op, int rows, Buffer targets, String lossName, Buffer loss, Object... matrices) {
        buffer(op, "targets", targets, rows);
        buffer(op, lossName, loss, 1);
        distinct(op, "targets", targets, lossName, loss);
        distinct(op, lossName, loss, matrices);
        distinct(op, "targets", targets, matrices);
    }

    // ------------------------------------------------------------------------------------------------ optimizers

    public void sgdStepMany(SgdHyper h, Buffer lr, Buffer guard, Buffer skipped, Buffer[] params, Buffer[] grads,
                            Buffer[] momentumBuffers, long[] lengths) {
        String op = "sgdStepMany";
        required(op, "hyper-parameters", h);
        required(op, "params", params);
        required(op, "grads", grads);
        required(op, "lengths", lengths);
        int count = params.length;
        if (grads.length != count || lengths.length != count) {
            throw new IllegalArgumentException(op + ": " + count + " params but " + grads.length + " grads and "
                    + lengths.length + " lengths");
        }
        if (h.momentum() != 0f && momentumBuffers == null) {
            throw new IllegalArgumentException(op + ": momentum " + h.momentum() + " needs momentum buffers, got null");
        }
        if (momentumBuffers != null && momentumBuffers.length != count) {
            throw new IllegalArgumentException(op + ": " + count + " params but " + momentumBuffers.length
                    + " momentum buffers");
        }
        Set<Buffer> written = Collections.newSetFromMap(new IdentityHashMap<>());
        Set<Buffer> read = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < count; i++) {
            count(op, "lengths[" + i + "]", lengths[i]);
            buffer(op, "params[" + i + "]", params[i], lengths[i]);
            buffer(op, "grads[" + i + "]", grads[i], lengths[i]);
            Buffer m = momentumBuffers == null ? null : momentumBuffers[i];
            if (h.momentum() != 0f) {
                buffer(op, "momentumBuffers[" + i + "]", m, lengths[i]);
            } else {
                optional(op, "momentumBuffers[" + i + "]", m, lengths[i]);
            }
            // a kernel updating one buffer twice in one pass would race, and a parameter read as a gradient changes
            if (!written.add(params[i]) || m != null && !written.add(m)) {
                throw new IllegalArgumentException(op + ": params[" + i + "] or its momentum buffer appears twice in one"
                        + " step");
            }
            read.add(grads[i]);
        }
        for (Buffer w : written) {
            if (read.contains(w)) {
                throw new IllegalArgumentException(op + ": a parameter or momentum buffer is also a gradient");
            }
        }
        optional(op, "lr", lr, 1);
        optional(op, "guard", guard, 1);
        optional(op, "skipped", skipped, 1);
        if (skipped != null && (written.contains(skipped) || skipped == guard || skipped == lr)) {
            throw new IllegalArgumentException(op + ": skipped must be a buffer of its own");
        }
    }

    public void adamStep(AdamHyper h, Buffer param, Buffer grad, Buffer expAvg, Buffer expAvgSq, long n) {
        String op = "adamStep";
        required(op, "hyper-parameters", h);
        if (h.step() < 1) {
            throw new IllegalArgumentException(op + ": step must be >= 1 (1 on the first update), got " + h.step());
        }
        count(op, "n", n);
        buffers(op, n, "param", param, "grad", grad, "expAvg", expAvg, "expAvgSq", expAvgSq);
        distinct(op, "param", param, "grad", grad, "expAvg", expAvg, "expAvgSq", expAvgSq);
        distinct(op, "expAvg", expAvg, "grad", grad, "expAvgSq", expAvgSq);
        distinct(op, "expAvgSq", expAvgSq, "grad", grad);
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /** One input of {@link OneOutput#output}: its name, the buffer and the floats it must hold. */
    private record In(String name, Buffer buffer, long need, boolean optional) {
    }

    private static In in(String name, Buffer b, long need) {
        return new In(name, b, need, false);
    }

    private static In optionalIn(String name, Buffer b, long need) {
        return new In(name, b, need, true);
    }

    /** The checks after an op's geometry is known to be present. */
    private final class OneOutput {
        private final String op;

        OneOutput(String op) {
            this.op = op;
        }

        /** Each input holds its length, {@code out} holds {@code outLength} and is none of the inputs. */
        void output(String outName, Buffer out, long outLength, In... inputs) {
            for (In i : inputs) {
                if (i.optional()) {
                    optional(op, i.name(), i.buffer(), i.need());
                } else {
                    buffer(op, i.name(), i.buffer(), i.need());
                }
            }
            buffer(op, outName, out, outLength);
            for (In i : inputs) {
                if (i.buffer() == out) {
                    throw new IllegalArgumentException(op + ": " + outName + " and " + i.name() + " are the same"
                            + " buffer; this op does not work in place");
                }
            }
        }
    }

    /** Checks {@code geometry} is not null (evaluated before the lengths the caller then takes from it). */
    private OneOutput present(String op, Object geometry) {
        required(op, "geometry", geometry);
        return new OneOutput(op);
    }

    /** {@code b} is an open buffer of the owner holding at least {@code need} floats. */
    private void buffer(String op, String name, Buffer b, long need) {
        if (b == null) {
            throw new IllegalArgumentException(op + ": " + name + " is null");
        }
        Backend from = b.backend();
        if (from != owner) {
            throw new IllegalArgumentException(op + ": " + name + " belongs to " + (from == null ? "no backend"
                    : "another backend instance (" + from.name() + ")") + ", not to this " + owner.name() + " backend");
        }
        if (b.isClosed()) {
            throw new IllegalArgumentException(op + ": " + name + " (" + b.length() + " floats) is closed");
        }
        if (b.length() < need) {
            throw new IllegalArgumentException(op + ": " + name + " is too short: expected at least " + need
                    + " floats, found " + b.length());
        }
    }

    /** Every buffer of {@code namesAndBuffers} (name, buffer pairs) as {@link #buffer} with the same length. */
    private void buffers(String op, long need, Object... namesAndBuffers) {
        for (int i = 0; i < namesAndBuffers.length; i += 2) {
            buffer(op, (String) namesAndBuffers[i], (Buffer) namesAndBuffers[i + 1], need);
        }
    }

    /** Batch norm's optional per-channel scale and shift. */
    private void affine(String op, int channels, Buffer gamma, Buffer beta) {
        optional(op, "gamma", gamma, channels);
        optional(op, "beta", beta, channels);
    }

    private void optional(String op, String name, Buffer b, long need) {
        if (b != null) {
            buffer(op, name, b, need);
        }
    }

    private void elementwise(String op, long n, String xName, Buffer x, String yName, Buffer y) {
        count(op, "n", n);
        buffers(op, n, xName, x, yName, y);
    }

    private static void required(String op, String name, Object value) {
        if (value == null) {
            throw new IllegalArgumentException(op + ": " + name + " is null");
        }
    }

    private static void count(String op, String name, long n) {
        if (n < 0) {
            throw new IllegalArgumentException(op + ": " + name + " must be >= 0, got " + n);
        }
    }

    private static void range(String op, String name, long offset, long length, long size) {
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new IllegalArgumentException(op + ": range [" + offset + ", " + (offset + length) + ") of " + name
                    + " is outside [0, " + size + ")");
        }
    }

    /** The element count of a checked {@code (rows, cols)} matrix. */
    private static long matrix(String op, int rows, int cols, int minRows) {
        if (rows < minRows || cols < 1) {
            throw new IllegalArgumentException(op + ": need rows >= " + minRows + " and columns >= 1, got (" + rows
                    + ", " + cols + ")");
        }
        return (long) rows * cols;
    }

    /** {@code shape} has {@code target}'s rank and each of its dimensions equals the target's or is 1. */
    private static void broadcastable(String op, int[] target, String name, int[] shape) {
        required(op, "shape", target);
        required(op, name, shape);
        for (int d : target) {
            if (d < 0) {
                throw new IllegalArgumentException(op + ": negative dimension in " + Arrays.toString(target));
            }
        }
        if (shape.length != target.length) {
            throw new IllegalArgumentException(op + ": " + name + " " + Arrays.toString(shape) + " and "
                    + Arrays.toString(target) + " have different ranks (the caller left-pads with ones)");
        }
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] != target[d] && shape[d] != 1) {
                throw new IllegalArgumentException(op + ": " + name + " " + Arrays.toString(shape)
                        + " does not broadcast to " + Arrays.toString(target) + " (dimension " + d + ")");
            }
        }
    }

    private static long volume(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** {@code out} (nullable) is none of {@code inputs}, given as name, buffer pairs. */
    private static void distinct(String op, String outName, Buffer out, Object... inputs) {
        if (out == null) {
            return;
        }
        for (int i = 0; i < inputs.length; i += 2) {
            if (inputs[i + 1] == out) {
                throw new IllegalArgumentException(op + ": " + outName + " and " + inputs[i] + " are the same buffer;"
                        + " this op does not work in place");
            }
        }
    }
}
