package dev.kiln.backend;

/**
 * Every operation Kiln needs from a compute backend; the one declared list of ops (compare ATen's
 * native_functions.yaml). {@code dev.kiln.core.Tensor} and the layers call nothing else, so a backend that
 * implements this interface runs every model. Every method is reachable from the public tensor, layer or optimizer
 * API and covered by the conformance suite.
 *
 * <p>Conventions, the same for every method:
 * <ul>
 *   <li>All data is float32, contiguous, row-major (NCHW for images). Class indices are stored as floats.</li>
 *   <li>Output buffers are allocated by the caller with the right length and are overwritten, never accumulated
 *       into, unless the method says otherwise. Inputs are never modified unless the method says so.</li>
 *   <li>Shapes passed together ({@code binary}, {@code sumTo}, {@code broadcastTo}) have the same rank; the caller
 *       left-pads with ones.</li>
 *   <li>A nullable parameter is annotated {@link Nullable}; null means "absent" as in PyTorch's optional arguments.</li>
 *   <li>Methods may run asynchronously (the CUDA backend queues work on its stream); {@link #download} and
 *       {@link #synchronize} are the points where the host waits. An error that depends on data (an invalid class
 *       target) may surface at the call or, on an asynchronous backend, at the next of those points.</li>
 *   <li>Misuse is an {@link IllegalArgumentException} naming the op and the argument, raised before anything is
 *       written: a null required argument, a buffer of another backend (instance), a closed buffer, one shorter than
 *       the op needs (naming expected and found lengths), a range or index outside its buffer, a negative size, or an
 *       output that is also an input where the method does not allow it (only the element-wise methods that say
 *       "{@code y} may be {@code x}" do). {@link BackendChecks} holds these checks, one method per op; every backend
 *       and the graph recorder call it. A closed backend is an {@link IllegalStateException}.</li>
 *   <li>NaN propagates as in PyTorch: {@code MAX}/{@code MIN} and ReLU of a NaN give NaN; the derivative of ReLU at
 *       exactly 0 is 0.</li>
 * </ul>
 *
 * <p>Implementations must be safe to call from several threads at once for independent buffers
 * (concurrent inference on a shared model reads the same parameter buffers).
 */
public interface Backend extends AutoCloseable {

    /** Short name used by {@code Device}: "cpu", "cuda". */
    String name();

    /** One line for logs and {@code kiln doctor}, e.g. "cpu (2 threads)". */
    String description();

    // ---------------------------------------------------------------- memory

    /** A new buffer of {@code length >= 0} floats, all zero. */
    Buffer allocate(long length);

    /**
     * A new buffer of {@code length} floats with unspecified content (PyTorch's {@code torch.empty}), for the output of
     * an op, which overwrites every element (the convention above). Skips the zero fill of {@link #allocate}, a kernel
     * launch per buffer on a GPU. In a capture nothing is filled at replay either.
     */
    Buffer allocateUninitialized(long length);

    /** A new buffer holding {@code src[offset .. offset+length)}. */
    Buffer upload(float[] src, int offset, int length);

    /** Copies {@code length} floats from {@code src} starting at {@code srcOffset} into {@code dst[dstOffset..]}; waits for pending work. */
    void download(Buffer src, long srcOffset, float[] dst, int dstOffset, int length);

    /** Overwrites {@code dst[dstOffset .. dstOffset+length)} from host memory. */
    void write(float[] src, int srcOffset, Buffer dst, long dstOffset, int length);

    /** Device-to-device copy of {@code length} floats. */
    void copy(Buffer src, long srcOffset, Buffer dst, long dstOffset, long length);

    /** Sets {@code dst[offset .. offset+length)} to {@code value}. */
    void fill(Buffer dst, long offset, long length, float value);

    /**
     * Viewing {@code src} as {@code (outer, srcExtent, inner)} and {@code dst} as {@code (outer, dstExtent, inner)}:
     * {@code dst[o, dstStart + j, i] = src[o, srcStart + j, i]} for {@code j < length}; the rest of {@code dst} is left
     * as it is. The one kernel behind {@code narrow}, {@code cat} and {@code stack} and their backward. {@code src} and
     * {@code dst} are different buffers.
     */
    void copySlice(Buffer src, int outer, int srcExtent, int srcStart, Buffer dst, int dstExtent, int dstStart,
                   int length, int inner);

    /** {@code dst[i, :] = src[rows[i], :]} for rows of {@code rowLength} floats (batch gathering on the device). */
    void gatherRows(Buffer src, int rowLength, int[] rows, Buffer dst);

    /** Waits until all queued work has finished. */
    void synchronize();

    // ---------------------------------------------------------------- graph capture

    /**
     * Starts recording instead of running: calls the capturing thread makes on {@link GraphCapture#recorder()} until
     * {@link GraphCapture#end()} are recorded into {@link RecordedWork} that replays them with the same buffers (a CUDA
     * graph), or returns null when this backend cannot record. While recording nothing runs, and host transfers
     * ({@code upload}, {@code write}, {@code download}, {@code synchronize}) throw {@link GraphCaptureException}.
     * Buffers allocated during the capture are zero-filled at every replay, as {@link #allocate} promises. Their memory,
     * and that of buffers closed during the capture, stays reserved until the work is closed: replays touch those
     * addresses, so they must not be handed to anyone else.
     */
    default GraphCapture beginCapture() {
        return null;
    }

    // ---------------------------------------------------------------- element-wise

    /** {@code y[i] = op(x[i])} for {@code i < n}; {@code y} may be {@code x}. */
    void unary(UnaryOp op, Buffer x, Buffer y, long n);

    /** {@code y[i] = op(x[i], s)} for {@code i < n}; {@code y} may be {@code x}. */
    void scalar(ScalarOp op, Buffer x, float s, Buffer y, long n);

    /**
     * {@code out = op(a, b)} with broadcasting: every dimension of {@code aShape} and {@code bShape} equals the one
     * of {@code outShape} or is 1. {@code out} may alias {@code a} or {@code b} when their shape equals {@code outShape}.
     */
    void binary(BinaryOp op, Buffer a, int[] aShape, Buffer b, int[] bShape, Buffer out, int[] outShape);

    /** {@code y[i] += alpha * x[i]} for {@code i < n} (gradient accumulation). */
    void axpy(float alpha, Buffer x, Buffer y, long n);

    // ---------------------------------------------------------------- reductions and broadcasting

    /** Sums {@code x} over every dimension where {@code outShape} is 1 and {@code xShape} is not. */
    void sumTo(Buffer x, int[] xShape, Buffer out, int[] outShape);

    /** Repeats {@code x} along every dimension where {@code xShape} is 1 and {@code outShape} is not. */
    void broadcastTo(Buffer x, int[] xShape, Buffer out, int[] outShape);

    /**
     * Viewing {@code x} as {@code (outer, extent, inner)}, writes the index (as a float) of the first maximum along
     * the middle dimension into {@code out (outer, inner)}. NaN counts as the maximum, as in PyTorch.
     */
    void argmax(Buffer x, int outer, int extent, int inner, Buffer out);

    // ---------------------------------------------------------------- dense

    /**
     * Row-major {@code C(m,n) = alpha * op(A) * op(B) + beta * C}, where {@code op(A)} is {@code (m,k)}: A is stored
     * {@code (m,k)}, or {@code (k,m)} when {@code transA}; B is stored {@code (k,n)}, or {@code (n,k)} when
     * {@code transB}. With {@code beta == 0} the previous content of C is ignored (NaN included).
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k,
              float alpha, Buffer a, Buffer b, float beta, Buffer c);

    // ---------------------------------------------------------------- convolution

    /** {@code y = conv2d(x, w) + bias}; {@code bias (outChannels)} is nullable. */
    void conv2dForward(ConvGeometry g, Buffer x, Buffer w, @Nullable Buffer bias, Buffer y);

    /** Gradient with respect to the input. */
    void conv2dBackwardData(ConvGeometry g, Buffer w, Buffer dy, Buffer dx);

    /** Gradient with respect to the weight. */
    void conv2dBackwardWeight(ConvGeometry g, Buffer x, Buffer dy, Buffer dw);

    /** Gradient with respect to the bias: {@code db[c] = sum over n, h, w of dy}. */
    void conv2dBackwardBias(ConvGeometry g, Buffer dy, Buffer db);

    // ---------------------------------------------------------------- batch normalization

    /**
     * Training-mode batch norm: per channel, biased batch mean and variance over {@code n * spatial} values;
     * {@code y = gamma * (x - mean) * invStd + beta} with {@code invStd = 1 / sqrt(var + eps)}. Saves
     * {@code mean} and {@code invStd} (length {@code channels}) for the backward pass and the running-statistics
     * update. {@code gamma} and {@code beta} are nullable (affine = false: 1 and 0).
     */
    void batchNormForwardTraining(BatchNormGeometry g, Buffer x, @Nullable Buffer gamma, @Nullable Buffer beta,
                                  float eps, Buffer y, Buffer saveMean, Buffer saveInvStd);

    /**
     * Inference-mode batch norm with the given (running) statistics, then the activation {@code a}
     * ({@link Activation#IDENTITY} for none), in one pass over memory: {@code y = a(gamma * (x - mean) / sqrt(var + eps)
     * + beta)}, the scale computed in float64 per channel. No backward: in eval mode with gradients the layer composes
     * the backward from element-wise ops. {@code y} may be {@code x}.
     */
    void batchNormForwardInference(BatchNormGeometry g, Activation a, Buffer x, @Nullable Buffer gamma,
                                   @Nullable Buffer beta, Buffer mean, Buffer var, float eps, Buffer y);

    /**
     * Backward of {@link #batchNormForwardTraining} from its saved statistics. {@code gamma} nullable (treated as 1);
     * {@code dx}, {@code dGamma}, {@code dBeta} nullable (not wanted); outputs are overwritten.
     */
    void batchNormBackward(BatchNormGeometry g, Buffer x, Buffer dy, @Nullable Buffer gamma, Buffer saveMean,
                           Buffer saveInvStd, @Nullable Buffer dx, @Nullable Buffer dGamma, @Nullable Buffer dBeta);

    /**
     * Training-mode batch norm then the activation {@code a}, in one pass over memory:
     * {@code y = a(batchNormForwardTraining(x))}, bitwise what {@link #batchNormForwardTraining} followed by
     * {@link #activationForward} gives, with the same saved {@code mean} and {@code invStd} (from which
     * {@link #batchNormUpdateRunningStats} updates the running statistics, inside a training step at its commit).
     * {@code gamma} and {@code beta} are nullable.
     */
    void batchNormActivationForwardTraining(BatchNormGeometry g, Activation a, Buffer x, @Nullable Buffer gamma,
                                            @Nullable Buffer beta, float eps, Buffer y, Buffer saveMean,
                                            Buffer saveInvStd);

    /**
     * Backward of {@link #batchNormActivationForwardTraining} from its input {@code x}, its output {@code y} and the
     * saved statistics: {@code dy} goes through the activation's derivative (taken from {@code y}, as every declared
     * activation's can be) and then through the batch norm in one call, without an intermediate gradient buffer the
     * caller allocates, bitwise what {@link #activationBackward} followed by {@link #batchNormBackward} gives. {@code gamma} nullable (treated as 1); {@code dx}, {@code dGamma},
     * {@code dBeta} nullable (not wanted); outputs are overwritten.
     */
    void batchNormActivationBackward(BatchNormGeometry g, Activation a, Buffer x, Buffer y, Buffer dy,
                                     @Nullable Buffer gamma, Buffer saveMean, Buffer saveInvStd, @Nullable Buffer dx,
                                     @Nullable Buffer dGamma, @Nullable Buffer dBeta);

    /**
     * PyTorch's running-statistics update from a training forward's saved statistics:
     * {@code var_unbiased = (1/invStd^2 - eps) * m/(m-1)} with {@code m = n * spatial}, then
     * {@code runningMean = (1-factor) * runningMean + factor * mean} and likewise for {@code runningVar}.
     * {@code factor} is the momentum, or {@code 1 / numBatchesTracked} for a cumulative average.
     * {@code m = 1} (one value per channel) is an {@link IllegalArgumentException}, as PyTorch refuses to train then.
     * <p>
     * {@code guard} and {@code skipped} (nullable, one float each) work as in {@link #sgdStepMany}: when
     * {@code guard[0]} (the step's loss) is NaN or infinite, the running statistics stay bitwise unchanged and
     * {@code skipped[0]} is incremented instead, so a training step commits its statistics with its update.
     */
    void batchNormUpdateRunningStats(BatchNormGeometry g, Buffer saveMean, Buffer saveInvStd, float eps,
                                     double factor, Buffer runningMean, Buffer runningVar, @Nullable Buffer guard,
                                     @Nullable Buffer skipped);

    // ---------------------------------------------------------------- pooling

    void avgPool2dForward(PoolGeometry g, Buffer x, Buffer y);

    void avgPool2dBackward(PoolGeometry g, Buffer dy, Buffer dx);

    void maxPool2dForward(PoolGeometry g, Buffer x, Buffer y);

    /** Routes each {@code dy} to the first position in its window where {@code x} equals the maximum {@code y}. */
    void maxPool2dBackward(PoolGeometry g, Buffer x, Buffer y, Buffer dy, Buffer dx);

    /**
     * Adaptive average pooling: each output is the mean of its window ({@link AdaptivePoolGeometry}), the sum divided
     * by the window's height and then by its width, as PyTorch does.
     */
    void adaptiveAvgPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y);

    /** {@code dx[p] = sum over the windows containing p of dy / height / width}, in output order. */
    void adaptiveAvgPool2dBackward(AdaptivePoolGeometry g, Buffer dy, Buffer dx);

    /**
     * Adaptive max pooling: the maximum of each window, and in {@code indices} its position {@code h * inW + w} in the
     * input plane (as a float; PyTorch's {@code return_indices}): the first maximum in row-major order, or the last
     * NaN when the window holds one (PyTorch's CPU kernel).
     */
    void adaptiveMaxPool2dForward(AdaptivePoolGeometry g, Buffer x, Buffer y, Buffer indices);

    /** Routes each {@code dy} to the position its {@code indices} entry names; positions named by several add up. */
    void adaptiveMaxPool2dBackward(AdaptivePoolGeometry g, Buffer indices, Buffer dy, Buffer dx);

    // ---------------------------------------------------------------- upsampling

    /** Nearest-neighbour upsampling by integer factors: {@code y[oh, ow] = x[oh / scaleH, ow / scaleW]}. */
    void upsampleNearest2dForward(UpsampleGeometry g, Buffer x, Buffer y);

    /** {@code dx[h, w]} = the sum of the {@code scaleH x scaleW} block of {@code dy} it was copied to, row-major. */
    void upsampleNearest2dBackward(UpsampleGeometry g, Buffer dy, Buffer dx);

    // ---------------------------------------------------------------- activations and softmax

    /** {@code y[i] = a(x[i])} for {@code i < n}; {@code y} may be {@code x}. */
    void activationForward(Activation a, Buffer x, Buffer y, long n);

    /**
     * {@code dx = dy * f'(x)}, computed from whichever of {@code x} and the forward output {@code y} is cheaper; callers
     * pass both. {@code dx} may be {@code dy}.
     */
    void activationBackward(Activation a, Buffer x, Buffer y, Buffer dy, Buffer dx, long n);

    /**
     * {@code y[i] = a(x1[i] + x2[i])} for {@code i < n} (a residual sum and its activation), bitwise {@link #binary}
     * {@code ADD} on equal shapes followed by {@link #activationForward}. {@code y} may be {@code x1} or {@code x2}.
     * Its backward is {@link #activationBackward} from {@code y}, whose {@code dx} is the gradient of both inputs.
     */
    void addActivation(Activation a, Buffer x1, Buffer x2, Buffer y, long n);

    /**
     * Viewing {@code x} and {@code y} as {@code (outer, channels, inner)}: {@code y = a(x + bias[channel])}, the bias and
     * activation of a linear ({@code inner = 1}) or convolution layer in one pass (inference only). {@code y} may be
     * {@code x}.
     */
    void biasActivation(Activation a, int outer, int channels, int inner, Buffer x, Buffer bias, Buffer y);

    /** Softmax over each row of a {@code (rows, cols)} matrix. */
    void softmaxForward(int rows, int cols, Buffer x, Buffer y);

    /** {@code dx = y * (dy - sum(dy * y))} row by row. */
    void softmaxBackward(int rows, int cols, Buffer y, Buffer dy, Buffer dx);

    /**
     * Mean cross-entropy of {@code logits (rows, classes)} against class indices {@code targets (rows)}:
     * writes {@code loss[0]} and the softmax probabilities (saved for the backward pass).
     * A target outside {@code [0, classes)} is an error.
     */
    void softmaxCrossEntropyForward(int rows, int classes, Buffer logits, Buffer targets, Buffer probs, Buffer loss);

    /** {@code dLogits = (probs - onehot(targets)) * dLoss[0] / rows}. */
    void softmaxCrossEntropyBackward(int rows, int classes, Buffer probs, Buffer targets, Buffer dLoss, Buffer dLogits);

    // ---------------------------------------------------------------- optimizers (in place)

    /**
     * One SGD step ({@link SgdHyper}'s rule) for every {@code i < params.length} on {@code (params[i], grads[i],
     * momentumBuffers[i], lengths[i])}, in place and in one pass (one kernel launch on CUDA for up to 32 parameters,
     * like PyTorch's fused SGD).
     * <ul>
     *   <li>{@code lr} (nullable): a one-float buffer holding the learning rate, used instead of {@code h.lr()}; a
     *       captured graph then replays with whatever rate the buffer holds at the time.</li>
     *   <li>{@code guard} (nullable): a one-float buffer, normally the loss. When it holds NaN or an infinity nothing
     *       is updated, and {@code skipped[0]} (nullable) is incremented instead: a step guarded by its loss needs no
     *       host wait.</li>
     *   <li>{@code momentumBuffers} is nullable when {@code h.momentum() == 0}.</li>
     * </ul>
     * The arrays have the same length; every buffer is checked before anything is written. Parameters must be distinct
     * buffers, and no parameter may be a gradient or momentum buffer.
     */
    void sgdStepMany(SgdHyper h, @Nullable Buffer lr, @Nullable Buffer guard, @Nullable Buffer skipped,
                     Buffer[] params, Buffer[] grads, @Nullable Buffer[] momentumBuffers, long[] lengths);

    /** Updates {@code param}, {@code expAvg} and {@code expAvgSq} in place. */
    void adamStep(AdamHyper h, Buffer param, Buffer grad, Buffer expAvg, Buffer expAvgSq, long n);

    /** Releases everything the backend holds (pools, handles, threads). */
    @Override
    void close();
}
