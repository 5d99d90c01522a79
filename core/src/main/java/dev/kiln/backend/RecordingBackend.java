package dev.kiln.backend;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Graph capture for a backend without native graphs (the CPU): each call is checked as the delegate would check it
 * and recorded as a closure over the same buffers; {@link RecordedWork#replay()} runs the closures in order. What a
 * recording means is defined by {@link Backend#beginCapture()}; the delegate keeps the memory of buffers freed during
 * the capture (and of buffers allocated during it) out of circulation until {@code onClose} runs.
 */
public final class RecordingBackend implements Backend, GraphCapture {

    private final Backend delegate;
    private final Runnable onEnd;
    private final Runnable onClose;
    private final List<Runnable> calls = new ArrayList<>();
    private final Set<Buffer> touched = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<Buffer, Buffer> pinned = new IdentityHashMap<>();
    private final UnaryOperator<Buffer> pin;
    private boolean finished;

    /**
     * @param delegate the backend that runs the work at replay
     * @param pin      makes a buffer of the delegate that shares {@code b}'s memory and stays usable after {@code b} is
     *                 closed (closing it must not free anything)
     * @param onEnd    called once when recording stops (end or abort): the delegate stops reserving freed memory
     * @param onClose  called once when the recorded work is closed or the capture aborted: reserved memory returns
     */
    public RecordingBackend(Backend delegate, UnaryOperator<Buffer> pin, Runnable onEnd, Runnable onClose) {
        this.delegate = delegate;
        this.pin = pin;
        this.onEnd = onEnd;
        this.onClose = onClose;
    }

    @Override
    public Backend recorder() {
        return this;
    }

    @Override
    public RecordedWork end() {
        finish();
        List<Runnable> work = List.copyOf(calls);
        List<Buffer> external = new ArrayList<>();
        for (Buffer b : touched) {
            if (!b.isClosed()) {
                external.add(b);
            }
        }
        return new RecordedWork() {
            private boolean closed;

            @Override
            public void replay() {
                if (closed) {
                    throw new GraphCaptureException("replay of closed recorded work");
                }
                for (Buffer b : external) {
                    if (b.isClosed()) {
                        throw new GraphCaptureException("a buffer of " + b.length() + " floats used by the recorded work"
                                + " was closed after the capture; keep every tensor the captured step uses open while"
                                + " the graph lives");
                    }
                }
                for (Runnable r : work) {
                    r.run();
                }
            }

            @Override
            public int operations() {
                return work.size();
            }

            @Override
            public void close() {
                if (!closed) {
                    closed = true;
                    onClose.run();
                }
            }
        };
    }

    @Override
    public void abort() {
        finish();
        calls.clear();
        onClose.run();
    }

    private void finish() {
        if (finished) {
            throw new IllegalStateException("capture already ended");
        }
        finished = true;
        onEnd.run();
    }

    private void record(Runnable call) {
        if (finished) {
            throw new IllegalStateException("capture already ended");
        }
        calls.add(call);
    }

    /**
     * The stand-in the recorded call will use for {@code b}: the caller may close {@code b} during or after the
     * capture (a step's temporaries), while the recorded work goes on using its memory, which the delegate reserves.
     */
    private Buffer pin(Buffer b) {
        if (b == null) {
            return null;
        }
        if (b.isClosed()) {
            throw new IllegalStateException("capture: a buffer of " + b.length() + " floats is closed");
        }
        touched.add(b);
        return pinned.computeIfAbsent(b, pin);
    }

    private Buffer[] pinAll(Buffer[] buffers) {
        if (buffers == null) {
            return null;
        }
        Buffer[] out = new Buffer[buffers.length];
        for (int i = 0; i < buffers.length; i++) {
            out[i] = pin(buffers[i]);
        }
        return out;
    }

    private static GraphCaptureException hostTransfer(String what) {
        return new GraphCaptureException(what + " during graph capture: captured work cannot exchange data with the"
                + " host (read results after a replay; put inputs in place before it)");
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public String description() {
        return delegate.description() + " (recording)";
    }

    // ---------------------------------------------------------------- memory

    @Override
    public Buffer allocate(long length) {
        Buffer b = delegate.allocate(length);
        Buffer bPinned = pin(b);
        record(() -> delegate.fill(bPinned, 0, bPinned.length(), 0f));
        return b;
    }

    @Override
    public Buffer allocateUninitialized(long length) {
        Buffer b = delegate.allocateUninitialized(length);
        pin(b);
        return b;
    }

    @Override
    public Buffer upload(float[] src, int offset, int length) {
        throw hostTransfer("upload of " + length + " floats");
    }

    @Override
    public void download(Buffer src, long srcOffset, float[] dst, int dstOffset, int length) {
        throw hostTransfer("download of " + length + " floats");
    }

    @Override
    public void write(float[] src, int srcOffset, Buffer dst, long dstOffset, int length) {
        throw hostTransfer("write of " + length + " floats");
    }

    @Override
    public void copy(Buffer src, long srcOffset, Buffer dst, long dstOffset, long length) {
        Buffer srcPinned = pin(src);
        Buffer dstPinned = pin(dst);
        record(() -> delegate.copy(srcPinned, srcOffset, dstPinned, dstOffset, length));
    }

    @Override
    public void fill(Buffer dst, long offset, long length, float value) {
        Buffer dstPinned = pin(dst);
        record(() -> delegate.fill(dstPinned, offset, length, value));
    }

    @Override
    public void gatherRows(Buffer src, int rowLength, int[] rows, Buffer dst) {
        int[] r = rows.clone();
        Buffer srcPinned = pin(src);
        Buffer dstPinned = pin(dst);
        record(() -> delegate.gatherRows(srcPinned, rowLength, r, dstPinned));
    }

    @Override
    public void synchronize() {
        throw hostTransfer("synchronize");
    }

    // ---------------------------------------------------------------- element-wise

    @Override
    public void unary(UnaryOp op, Buffer x, Buffer y, long n) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        record(() -> delegate.unary(op, xPinned, yPinned, n));
    }

    @Override
    public void scalar(ScalarOp op, Buffer x, float s, Buffer y, long n) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        record(() -> delegate.scalar(op, xPinned, s, yPinned, n));
    }

    @Override
    public void binary(BinaryOp op, Buffer a, int[] aShape, Buffer b, int[] bShape, Buffer out, int[] outShape) {
        int[] as = aShape.clone();
        int[] bs = bShape.clone();
        int[] os = outShape.clone();
        Buffer aPinned = pin(a);
        Buffer bPinned = pin(b);
        Buffer outPinned = pin(out);
        record(() -> delegate.binary(op, aPinned, as, bPinned, bs, outPinned, os));
    }

    @Override
    public void axpy(float alpha, Buffer x, Buffer y, long n) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        record(() -> delegate.axpy(alpha, xPinned, yPinned, n));
    }

    // ---------------------------------------------------------------- reductions and broadcasting

    @Override
    public void sumTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        int[] xs = xShape.clone();
        int[] os = outShape.clone();
        Buffer xPinned = pin(x);
        Buffer outPinned = pin(out);
        record(() -> delegate.sumTo(xPinned, xs, outPinned, os));
    }

    @Override
    public void broadcastTo(Buffer x, int[] xShape, Buffer out, int[] outShape) {
        int[] xs = xShape.clone();
        int[] os = outShape.clone();
        Buffer xPinned = pin(x);
        Buffer outPinned = pin(out);
        record(() -> delegate.broadcastTo(xPinned, xs, outPinned, os));
    }

    @Override
    public void argmax(Buffer x, int outer, int extent, int inner, Buffer out) {
        Buffer xPinned = pin(x);
        Buffer outPinned = pin(out);
        record(() -> delegate.argmax(xPinned, outer, extent, inner, outPinned));
    }

    // ---------------------------------------------------------------- dense and convolution

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, Buffer a, Buffer b, float beta,
                     Buffer c) {
        Buffer aPinned = pin(a);
        Buffer bPinned = pin(b);
        Buffer cPinned = pin(c);
        record(() -> delegate.gemm(transA, transB, m, n, k, alpha, aPinned, bPinned, beta, cPinned));
    }

    @Override
    public void conv2dForward(ConvGeometry g, Buffer x, Buffer w, Buffer bias, Buffer y) {
        Buffer xPinned = pin(x);
        Buffer wPinned = pin(w);
        Buffer biasPinned = pin(bias);
        Buffer yPinned = pin(y);
        record(() -> delegate.conv2dForward(g, xPinned, wPinned, biasPinned, yPinned));
    }

    @Override
    public void conv2dBackwardData(ConvGeometry g, Buffer w, Buffer dy, Buffer dx) {
        Buffer wPinned = pin(w);
        Buffer dyPinned = pin(dy);
        Buffer dxPinned = pin(dx);
        record(() -> delegate.conv2dBackwardData(g, wPinned, dyPinned, dxPinned));
    }

    @Override
    public void conv2dBackwardWeight(ConvGeometry g, Buffer x, Buffer dy, Buffer dw) {
        Buffer xPinned = pin(x);
        Buffer dyPinned = pin(dy);
        Buffer dwPinned = pin(dw);
        record(() -> delegate.conv2dBackwardWeight(g, xPinned, dyPinned, dwPinned));
    }

    @Override
    public void conv2dBackwardBias(ConvGeometry g, Buffer dy, Buffer db) {
        Buffer dyPinned = pin(dy);
        Buffer dbPinned = pin(db);
        record(() -> delegate.conv2dBackwardBias(g, dyPinned, dbPinned));
    }

    // ---------------------------------------------------------------- batch normalization

    @Override
    public void batchNormForwardTraining(BatchNormGeometry g, Buffer x, Buffer gamma, Buffer beta, float eps, Buffer y,
                                         Buffer saveMean, Buffer saveInvStd) {
        Buffer xPinned = pin(x);
        Buffer gammaPinned = pin(gamma);
        Buffer betaPinned = pin(beta);
        Buffer yPinned = pin(y);
        Buffer saveMeanPinned = pin(saveMean);
        Buffer saveInvStdPinned = pin(saveInvStd);
        record(() -> delegate.batchNormForwardTraining(g, xPinned, gammaPinned, betaPinned, eps, yPinned, saveMeanPinned, saveInvStdPinned));
    }

    @Override
    public void batchNormForwardInference(BatchNormGeometry g, Buffer x, Buffer gamma, Buffer beta, Buffer mean,
                                          Buffer var, float eps, Buffer y) {
        Buffer xPinned = pin(x);
        Buffer gammaPinned = pin(gamma);
        Buffer betaPinned = pin(beta);
        Buffer meanPinned = pin(mean);
        Buffer varPinned = pin(var);
        Buffer yPinned = pin(y);
        record(() -> delegate.batchNormForwardInference(g, xPinned, gammaPinned, betaPinned, meanPinned, varPinned, eps, yPinned));
    }

    @Override
    public void batchNormInferenceActivation(BatchNormGeometry g, Activation a, Buffer x, Buffer gamma, Buffer beta,
                                             Buffer mean, Buffer var, float eps, Buffer y) {
        Buffer xPinned = pin(x);
        Buffer gammaPinned = pin(gamma);
        Buffer betaPinned = pin(beta);
        Buffer meanPinned = pin(mean);
        Buffer varPinned = pin(var);
        Buffer yPinned = pin(y);
        record(() -> delegate.batchNormInferenceActivation(g, a, xPinned, gammaPinned, betaPinned, meanPinned,
                varPinned, eps, yPinned));
    }

    @Override
    public void batchNormBackward(BatchNormGeometry g, Buffer x, Buffer dy, Buffer gamma, Buffer saveMean,
                                  Buffer saveInvStd, Buffer dx, Buffer dGamma, Buffer dBeta) {
        Buffer xPinned = pin(x);
        Buffer dyPinned = pin(dy);
        Buffer gammaPinned = pin(gamma);
        Buffer saveMeanPinned = pin(saveMean);
        Buffer saveInvStdPinned = pin(saveInvStd);
        Buffer dxPinned = pin(dx);
        Buffer dGammaPinned = pin(dGamma);
        Buffer dBetaPinned = pin(dBeta);
        record(() -> delegate.batchNormBackward(g, xPinned, dyPinned, gammaPinned, saveMeanPinned, saveInvStdPinned, dxPinned, dGammaPinned, dBetaPinned));
    }

    @Override
    public void batchNormUpdateRunningStats(BatchNormGeometry g, Buffer saveMean, Buffer saveInvStd, float eps,
                                            double factor, Buffer runningMean, Buffer runningVar, Buffer guard,
                                            Buffer skipped) {
        if (g.valuesPerChannel() < 2) {
            // fail at capture, as the delegate would at the call, not at the first replay
            delegate.batchNormUpdateRunningStats(g, saveMean, saveInvStd, eps, factor, runningMean, runningVar, guard, skipped);
        }
        Buffer saveMeanPinned = pin(saveMean);
        Buffer saveInvStdPinned = pin(saveInvStd);
        Buffer runningMeanPinned = pin(runningMean);
        Buffer runningVarPinned = pin(runningVar);
        Buffer guardPinned = pin(guard);
        Buffer skippedPinned = pin(skipped);
        record(() -> delegate.batchNormUpdateRunningStats(g, saveMeanPinned, saveInvStdPinned, eps, factor,
                runningMeanPinned, runningVarPinned, guardPinned, skippedPinned));
    }

    // ---------------------------------------------------------------- pooling

    @Override
    public void avgPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        record(() -> delegate.avgPool2dForward(g, xPinned, yPinned));
    }

    @Override
    public void avgPool2dBackward(PoolGeometry g, Buffer dy, Buffer dx) {
        Buffer dyPinned = pin(dy);
        Buffer dxPinned = pin(dx);
        record(() -> delegate.avgPool2dBackward(g, dyPinned, dxPinned));
    }

    @Override
    public void maxPool2dForward(PoolGeometry g, Buffer x, Buffer y) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        record(() -> delegate.maxPool2dForward(g, xPinned, yPinned));
    }

    @Override
    public void maxPool2dBackward(PoolGeometry g, Buffer x, Buffer y, Buffer dy, Buffer dx) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        Buffer dyPinned = pin(dy);
        Buffer dxPinned = pin(dx);
        record(() -> delegate.maxPool2dBackward(g, xPinned, yPinned, dyPinned, dxPinned));
    }

    // ---------------------------------------------------------------- activations, softmax, loss

    @Override
    public void activationForward(Activation a, Buffer x, Buffer y, long n) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        record(() -> delegate.activationForward(a, xPinned, yPinned, n));
    }

    @Override
    public void biasActivation(Activation a, int outer, int channels, int inner, Buffer x, Buffer bias, Buffer y) {
        Buffer xPinned = pin(x);
        Buffer biasPinned = pin(bias);
        Buffer yPinned = pin(y);
        record(() -> delegate.biasActivation(a, outer, channels, inner, xPinned, biasPinned, yPinned));
    }

    @Override
    public void activationBackward(Activation a, Buffer x, Buffer y, Buffer dy, Buffer dx, long n) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        Buffer dyPinned = pin(dy);
        Buffer dxPinned = pin(dx);
        record(() -> delegate.activationBackward(a, xPinned, yPinned, dyPinned, dxPinned, n));
    }

    @Override
    public void softmaxForward(int rows, int cols, Buffer x, Buffer y) {
        Buffer xPinned = pin(x);
        Buffer yPinned = pin(y);
        record(() -> delegate.softmaxForward(rows, cols, xPinned, yPinned));
    }

    @Override
    public void softmaxBackward(int rows, int cols, Buffer y, Buffer dy, Buffer dx) {
        Buffer yPinned = pin(y);
        Buffer dyPinned = pin(dy);
        Buffer dxPinned = pin(dx);
        record(() -> delegate.softmaxBackward(rows, cols, yPinned, dyPinned, dxPinned));
    }

    @Override
    public void softmaxCrossEntropyForward(int rows, int classes, Buffer logits, Buffer targets, Buffer probs,
                                           Buffer loss) {
        Buffer logitsPinned = pin(logits);
        Buffer targetsPinned = pin(targets);
        Buffer probsPinned = pin(probs);
        Buffer lossPinned = pin(loss);
        record(() -> delegate.softmaxCrossEntropyForward(rows, classes, logitsPinned, targetsPinned, probsPinned, lossPinned));
    }

    @Override
    public void softmaxCrossEntropyBackward(int rows, int classes, Buffer probs, Buffer targets, Buffer dLoss,
                                            Buffer dLogits) {
        Buffer probsPinned = pin(probs);
        Buffer targetsPinned = pin(targets);
        Buffer dLossPinned = pin(dLoss);
        Buffer dLogitsPinned = pin(dLogits);
        record(() -> delegate.softmaxCrossEntropyBackward(rows, classes, probsPinned, targetsPinned, dLossPinned, dLogitsPinned));
    }

    // ---------------------------------------------------------------- optimizers

    @Override
    public void sgdStep(SgdHyper h, Buffer param, Buffer grad, Buffer momentumBuffer, long n) {
        Buffer paramPinned = pin(param);
        Buffer gradPinned = pin(grad);
        Buffer momentumBufferPinned = pin(momentumBuffer);
        record(() -> delegate.sgdStep(h, paramPinned, gradPinned, momentumBufferPinned, n));
    }

    @Override
    public void sgdStepMany(SgdHyper h, Buffer lr, Buffer guard, Buffer skipped,
                            Buffer[] params, Buffer[] grads, Buffer[] momentumBuffers, long[] lengths) {
        Buffer lrPinned = pin(lr);
        Buffer guardPinned = pin(guard);
        Buffer skippedPinned = pin(skipped);
        Buffer[] paramsPinned = pinAll(params);
        Buffer[] gradsPinned = pinAll(grads);
        Buffer[] momentumPinned = pinAll(momentumBuffers);
        long[] lengthsCopy = lengths == null ? null : lengths.clone();
        record(() -> delegate.sgdStepMany(h, lrPinned, guardPinned, skippedPinned, paramsPinned, gradsPinned,
                momentumPinned, lengthsCopy));
    }

    @Override
    public void adamStep(AdamHyper h, Buffer param, Buffer grad, Buffer expAvg, Buffer expAvgSq, long n) {
        Buffer paramPinned = pin(param);
        Buffer gradPinned = pin(grad);
        Buffer expAvgPinned = pin(expAvg);
        Buffer expAvgSqPinned = pin(expAvgSq);
        record(() -> delegate.adamStep(h, paramPinned, gradPinned, expAvgPinned, expAvgSqPinned, n));
    }

    /** Closing the recorder would close the delegate; a recording ends with {@link #end()} or {@link #abort()}. */
    @Override
    public void close() {
        throw new UnsupportedOperationException("a recording backend is ended with end() or abort(), not closed");
    }
}
