package dev.kiln.onnx;

import dev.kiln.core.Shapes;

/**
 * A model cannot be written as ONNX: an op of its forward pass has no ONNX form (or not with these attributes), or
 * the forward pass is not one fixed graph. The message names the op (or the layer) and the shape of the tensor it
 * produced, e.g. {@code op 'cross_entropy' producing a tensor of shape () has no ONNX mapping}.
 */
public class OnnxExportException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final String op;
    private final int[] shape;

    public OnnxExportException(String op, int[] shape, String problem) {
        this(op, shape, problem, null);
    }

    public OnnxExportException(String op, int[] shape, String problem, Throwable cause) {
        super("op '" + op + "' producing a tensor of shape " + (shape == null ? "?" : Shapes.toString(shape)) + ": "
                + problem, cause);
        this.op = op;
        this.shape = shape == null ? null : shape.clone();
    }

    /** The Kiln op (as {@link dev.kiln.core.Tensor#op()} names it) that could not be written. */
    public String op() {
        return op;
    }

    /** The shape of the tensor that op produced while the exporter traced the model (batch of 2). */
    public int[] shape() {
        return shape == null ? null : shape.clone();
    }
}
