package dev.kiln.core;

import java.util.Locale;

/** PyTorch-style printing: nested brackets, aligned columns, a shared number format, "..." past 1000 elements. */
final class TensorFormatter {

    private static final int THRESHOLD = 1000;
    private static final int EDGE_ITEMS = 3;

    private TensorFormatter() {
    }

    static String format(float[] data, int[] shape) {
        boolean summarize = data.length > THRESHOLD;
        String style = chooseStyle(data);
        int width = 0;
        for (float v : data) {
            width = Math.max(width, formatValue(v, style).length());
        }
        StringBuilder sb = new StringBuilder();
        if (shape.length == 0) {
            return formatValue(data[0], style);
        }
        append(sb, data, shape, 0, 0, style, width, summarize, "tensor(".length());
        return sb.toString();
    }

    private static void append(StringBuilder sb, float[] data, int[] shape, int dim, int offset, String style,
                               int width, boolean summarize, int indent) {
        int n = shape[dim];
        int stride = 1;
        for (int i = dim + 1; i < shape.length; i++) {
            stride *= shape[i];
        }
        sb.append('[');
        boolean elide = summarize && n > 2 * EDGE_ITEMS;
        for (int i = 0; i < n; i++) {
            if (elide && i == EDGE_ITEMS) {
                sb.append(dim == shape.length - 1 ? "..., " : "...,\n" + " ".repeat(indent + dim + 1));
                i = n - EDGE_ITEMS - 1;
                continue;
            }
            if (dim == shape.length - 1) {
                String s = formatValue(data[offset + i], style);
                sb.append(" ".repeat(width - s.length())).append(s);
                if (i < n - 1) {
                    sb.append(", ");
                }
            } else {
                append(sb, data, shape, dim + 1, offset + i * stride, style, width, summarize, indent);
                if (i < n - 1) {
                    sb.append(',').append("\n".repeat(shape.length - dim - 1)).append(" ".repeat(indent + dim + 1));
                }
            }
        }
        sb.append(']');
    }

    private static String chooseStyle(float[] data) {
        boolean allIntegral = true;
        double maxAbs = 0;
        double minAbs = Double.MAX_VALUE;
        for (float v : data) {
            if (!Float.isFinite(v)) {
                continue;
            }
            double a = Math.abs(v);
            if (v != Math.rint(v)) {
                allIntegral = false;
            }
            if (a > 0) {
                maxAbs = Math.max(maxAbs, a);
                minAbs = Math.min(minAbs, a);
            }
        }
        if (allIntegral) {
            return maxAbs >= 1e8 ? "sci" : "int";
        }
        if (maxAbs >= 1e8 || minAbs < 1e-4 || maxAbs / minAbs > 1000) {
            return "sci";
        }
        return "fixed";
    }

    /**
     * Four decimals of the exact binary value, ties to even, sign kept for values that round to zero: what Python's
     * {@code '{:.4f}'} prints for the same float, so Kiln prints PyTorch's digits.
     */
    private static String fixed4(float v) {
        String digits = new java.math.BigDecimal(Math.abs((double) v)).setScale(4, java.math.RoundingMode.HALF_EVEN).toPlainString();
        return (Float.floatToRawIntBits(v) < 0 ? "-" : "") + digits;
    }

    private static String formatValue(float v, String style) {
        if (Float.isNaN(v)) {
            return "nan";
        }
        if (Float.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        return switch (style) {
            case "int" -> String.format(Locale.ROOT, "%.0f.", v);
            case "sci" -> String.format(Locale.ROOT, "%.4e", v);
            default -> fixed4(v);
        };
    }
}
