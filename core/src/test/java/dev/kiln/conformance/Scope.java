package dev.kiln.conformance;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;

import java.util.ArrayList;
import java.util.List;

/**
 * The buffers of one test: closes them all at the end, and remembers the inputs' contents so a test can check
 * that an op did not modify them ("inputs are never modified unless the method says so").
 */
final class Scope implements AutoCloseable {

    private final Backend b;
    private final List<Buffer> owned = new ArrayList<>();
    private final List<Buffer> inputs = new ArrayList<>();
    private final List<float[]> inputData = new ArrayList<>();

    Scope(Backend b) {
        this.b = b;
    }

    /** Uploads an input whose content must stay unchanged. */
    Buffer in(float[] data) {
        Buffer buf = up(data);
        inputs.add(buf);
        inputData.add(data.clone());
        return buf;
    }

    /** Uploads data (no unchanged-check). */
    Buffer up(float[] data) {
        Buffer buf = b.upload(data, 0, data.length);
        owned.add(buf);
        return buf;
    }

    /** An output buffer pre-filled with NaN, so an element the op forgets to write shows up as a mismatch. */
    Buffer out(long n) {
        Buffer buf = b.allocate(n);
        owned.add(buf);
        b.fill(buf, 0, n, Float.NaN);
        return buf;
    }

    Buffer zeros(long n) {
        Buffer buf = b.allocate(n);
        owned.add(buf);
        return buf;
    }

    float[] down(Buffer buf) {
        float[] a = new float[Math.toIntExact(buf.length())];
        b.download(buf, 0, a, 0, a.length);
        return a;
    }

    double[] down64(Buffer buf) {
        return Inputs.widen(down(buf));
    }

    /** Fails if any buffer registered with {@link #in} changed. */
    void assertInputsUnchanged(String op) {
        for (int i = 0; i < inputs.size(); i++) {
            Tolerance.assertExact(op + " modified its input #" + i + ";", new int[] {inputData.get(i).length},
                    down(inputs.get(i)), inputData.get(i));
        }
    }

    @Override
    public void close() {
        for (Buffer buf : owned) {
            buf.close();
        }
    }
}
