package dev.kiln.spark;

import dev.kiln.distributed.Collective;

/** Counts the wall time of every exchange of the collective it wraps. */
final class TimedCollective implements Collective {

    private final Collective inner;
    private long nanos;

    TimedCollective(Collective inner) {
        this.inner = inner;
    }

    @Override
    public int rank() {
        return inner.rank();
    }

    @Override
    public int worldSize() {
        return inner.worldSize();
    }

    @Override
    public byte[][] allGather(byte[] local) {
        long t0 = System.nanoTime();
        try {
            return inner.allGather(local);
        } finally {
            nanos += System.nanoTime() - t0;
        }
    }

    long nanos() {
        return nanos;
    }
}
