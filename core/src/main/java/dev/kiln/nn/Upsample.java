package dev.kiln.nn;

import dev.kiln.core.Tensor;
import dev.kiln.nn.functional.PoolOps;

/**
 * PyTorch's {@code nn.Upsample(scale_factor=s, mode='nearest')} for integer factors on (N, C, H, W): each pixel
 * becomes a {@code scaleH x scaleW} block, (N, C, H*scaleH, W*scaleW). The decoder step of a U-Net.
 */
public final class Upsample extends Module {

    private final int scaleH;
    private final int scaleW;

    /** The same integer factor on both axes. */
    public Upsample(int scaleFactor) {
        this(scaleFactor, scaleFactor);
    }

    public Upsample(int scaleH, int scaleW) {
        if (scaleH < 1 || scaleW < 1) {
            throw new IllegalArgumentException("Upsample: scale factors must be positive integers, got (" + scaleH + ", "
                    + scaleW + ")");
        }
        this.scaleH = scaleH;
        this.scaleW = scaleW;
    }

    @Override
    public Tensor forward(Tensor input) {
        return PoolOps.upsampleNearest2d(input, scaleH, scaleW);
    }

    public int scaleH() {
        return scaleH;
    }

    public int scaleW() {
        return scaleW;
    }

    @Override
    protected String extraRepr() {
        return "scale_factor=" + (scaleH == scaleW ? scaleH + ".0" : "(" + scaleH + ".0, " + scaleW + ".0)") + ", mode='nearest'";
    }
}
