package dev.kiln.cuda;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The parameter lists of the shipped kernels, read from their PTX, so every launch is checked against the kernel it
 * calls: cuLaunchKernel copies whatever bytes it is given, and a float passed where the kernel expects an int (or a
 * struct of the wrong size) would run silently with garbage.
 */
final class KernelSignatures {

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(([^)]*)\\)");
    private static final Pattern SCALAR = Pattern.compile("\\.param\\s+\\.(\\w+)\\s+\\w+");
    private static final Pattern STRUCT = Pattern.compile("\\.param\\s+\\.align\\s+\\d+\\s+\\.b8\\s+\\w+\\[(\\d+)]");

    private final Map<String, List<String>> params = new HashMap<>();

    /**
     * Adds the entries of one PTX module; a parameter is its type (u32, f32, u64...) or "b8[size]" for a struct.
     * Returns the module's kernel names in the order of the file.
     */
    List<String> addModule(byte[] ptx) {
        Matcher m = ENTRY.matcher(new String(ptx, StandardCharsets.US_ASCII));
        List<String> names = new ArrayList<>();
        while (m.find()) {
            List<String> types = new ArrayList<>();
            for (String decl : m.group(2).split(",")) {
                String d = decl.trim();
                if (d.isEmpty()) {
                    continue;
                }
                Matcher struct = STRUCT.matcher(d);
                Matcher scalar = SCALAR.matcher(d);
                if (struct.find()) {
                    types.add("b8[" + struct.group(1) + "]");
                } else if (scalar.find()) {
                    types.add(scalar.group(1));
                } else {
                    throw new IllegalStateException("cuda: cannot read kernel parameter '" + d + "' of " + m.group(1));
                }
            }
            params.put(m.group(1), List.copyOf(types));
            names.add(m.group(1));
        }
        return names;
    }

    List<String> parameters(String kernel) {
        return params.get(kernel);
    }

    /** Throws when {@code args} (as {@link CudaKernels#params} passes them) do not fit {@code kernel}'s parameters. */
    void check(String kernel, Object[] args) {
        List<String> types = params.get(kernel);
        if (types == null) {
            throw new IllegalArgumentException("cuda: no kernel named " + kernel + " in the shipped PTX");
        }
        if (types.size() != args.length) {
            throw new IllegalArgumentException("cuda: kernel " + kernel + " takes " + types.size() + " parameters "
                    + types + ", the launch passes " + args.length);
        }
        for (int i = 0; i < args.length; i++) {
            String type = types.get(i);
            if (!fits(type, args[i])) {
                throw new IllegalArgumentException("cuda: kernel " + kernel + " parameter " + i + " is ." + type
                        + ", the launch passes " + describe(args[i]));
            }
        }
    }

    private static boolean fits(String type, Object a) {
        return switch (type) {
            case "u64", "s64", "b64" -> a == null || a instanceof jcuda.Pointer || a instanceof Long;
            case "u32", "s32", "b32" -> a instanceof Integer;
            case "f32" -> a instanceof Float;
            case "f64" -> a instanceof Double;
            default -> {
                int bytes = Integer.parseInt(type.substring("b8[".length(), type.length() - 1));
                yield a instanceof int[] v && v.length * Integer.BYTES == bytes
                        || a instanceof long[] w && w.length * Long.BYTES == bytes;
            }
        };
    }

    private static String describe(Object a) {
        if (a == null) {
            return "null";
        }
        if (a instanceof int[] v) {
            return "int[" + v.length + "] (" + v.length * Integer.BYTES + " bytes)";
        }
        if (a instanceof long[] v) {
            return "long[" + v.length + "] (" + v.length * Long.BYTES + " bytes)";
        }
        return a.getClass().getSimpleName() + " " + a;
    }
}
