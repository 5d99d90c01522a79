package dev.kiln.core;

/**
 * The 32-bit Mersenne Twister (Matsumoto and Nishimura, 1998) as PyTorch's CPU generator runs it:
 * {@code torch.manual_seed(s)} seeds it with the low 32 bits of {@code s}, and a 64-bit draw is two 32-bit draws,
 * the first one the high half. Not thread-safe.
 */
final class Mt19937 {

    private static final int N = 624;
    private static final int M = 397;
    private static final int MATRIX_A = 0x9908b0df;

    private final int[] state = new int[N];
    private int next;

    Mt19937(long seed) {
        state[0] = (int) seed;
        for (int i = 1; i < N; i++) {
            int prev = state[i - 1];
            state[i] = 1812433253 * (prev ^ (prev >>> 30)) + i;
        }
        next = N;
    }

    /** The next 32 random bits, as an unsigned value. */
    long nextUnsigned32() {
        if (next >= N) {
            twist();
        }
        int y = state[next++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y & 0xFFFFFFFFL;
    }

    /** Two 32-bit draws, the first one the high half (PyTorch's {@code random64()}). */
    long next64() {
        long hi = nextUnsigned32();
        long lo = nextUnsigned32();
        return (hi << 32) | lo;
    }

    private void twist() {
        for (int i = 0; i < N; i++) {
            int y = (state[i] & 0x80000000) | (state[(i + 1) % N] & 0x7fffffff);
            state[i] = state[(i + M) % N] ^ (y >>> 1) ^ ((y & 1) != 0 ? MATRIX_A : 0);
        }
        next = 0;
    }
}
