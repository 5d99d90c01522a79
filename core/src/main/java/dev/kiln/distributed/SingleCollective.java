package dev.kiln.distributed;

/** The group of one member. */
enum SingleCollective implements Collective {
    INSTANCE;

    @Override
    public int rank() {
        return 0;
    }

    @Override
    public int worldSize() {
        return 1;
    }

    @Override
    public byte[][] allGather(byte[] local) {
        return new byte[][]{local.clone()};
    }

    @Override
    public String toString() {
        return "Collective.single()";
    }
}
