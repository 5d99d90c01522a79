package dev.kiln.cuda;

import jcuda.Pointer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The allocations of the checking stand-in: device blocks (fake addresses, 4 KiB apart so an overrun never lands in a
 * neighbour) and page-locked host blocks (real heap buffers behind fake addresses). A pointer passed to a call must
 * lie inside a live block with room for the bytes the call touches; a freed block is remembered to say so.
 */
final class DeviceMemoryMap {

    static final class Block {
        final long start;
        final long bytes;
        final String site;
        String freedAt;
        ByteBuffer host;

        Block(long start, long bytes, String site) {
            this.start = start;
            this.bytes = bytes;
            this.site = site;
        }

        long end() {
            return start + bytes;
        }
    }

    private final String kind;
    private final TreeMap<Long, Block> live = new TreeMap<>();
    private final TreeMap<Long, Block> freed = new TreeMap<>();
    private long next;
    private long liveBytes;
    private long allocations;
    private long frees;

    DeviceMemoryMap(String kind, long base) {
        this.kind = kind;
        this.next = base;
    }

    Block allocate(long bytes) {
        Block b = new Block(next, bytes, CallSite.here());
        next += (Math.max(bytes, 1) + 4095) / 4096 * 4096 + 4096;
        live.put(b.start, b);
        liveBytes += bytes;
        allocations++;
        return b;
    }

    void free(String call, long address) {
        Block b = live.get(address);
        if (b == null) {
            Block f = freed.get(address);
            throw new CudaCallViolation(call + ": 0x" + Long.toHexString(address) + " is not the start of a live " + kind
                    + " block" + (f != null ? " (freed before at " + f.freedAt + ", allocated at " + f.site + ")" : ""));
        }
        live.remove(address);
        b.freedAt = CallSite.here();
        freed.put(address, b);
        liveBytes -= b.bytes;
        frees++;
    }

    /** The live block holding {@code [address, address + bytes)}, or a violation naming what is wrong. */
    Block require(String call, String what, long address, long bytes) {
        if (address == 0) {
            throw new CudaCallViolation(call + ": " + what + " is a null pointer (needs " + bytes + " bytes)");
        }
        Map.Entry<Long, Block> e = live.floorEntry(address);
        if (e == null || address >= e.getValue().end() && !(bytes == 0 && address == e.getValue().end())) {
            Map.Entry<Long, Block> f = freed.floorEntry(address);
            String was = f != null && address < f.getValue().end() && !live.containsKey(f.getKey())
                    ? " (it was in a block of " + f.getValue().bytes + " bytes allocated at " + f.getValue().site
                    + ", freed at " + f.getValue().freedAt + ")" : "";
            throw new CudaCallViolation(call + ": " + what + " at 0x" + Long.toHexString(address) + " is not inside a live "
                    + kind + " allocation" + was);
        }
        Block b = e.getValue();
        if (address + bytes > b.end()) {
            throw new CudaCallViolation(call + ": " + what + " needs " + bytes + " bytes at offset " + (address - b.start)
                    + " of a " + kind + " block of " + b.bytes + " bytes (allocated at " + b.site + "): "
                    + (address + bytes - b.end()) + " bytes past its end");
        }
        return b;
    }

    Block require(String call, String what, Pointer p, long bytes) {
        return require(call, what, DeviceAddress.of(p), bytes);
    }

    ByteBuffer hostBuffer(Block b) {
        if (b.host == null) {
            if (b.bytes > Integer.MAX_VALUE) {
                throw new CudaCallViolation("hostBuffer: a ByteBuffer cannot address " + b.bytes + " bytes of page-locked memory"
                        + " (at most " + Integer.MAX_VALUE + ")");
            }
            b.host = ByteBuffer.allocate((int) b.bytes).order(ByteOrder.nativeOrder());
        }
        return b.host;
    }

    boolean isLive(long address) {
        Map.Entry<Long, Block> e = live.floorEntry(address);
        return e != null && address < e.getValue().end();
    }

    long liveBytes() {
        return liveBytes;
    }

    int liveBlocks() {
        return live.size();
    }

    long allocations() {
        return allocations;
    }

    long frees() {
        return frees;
    }

    Map<String, String> leaks() {
        Map<String, String> out = new LinkedHashMap<>();
        for (Block b : live.values()) {
            out.put(kind + " block of " + b.bytes + " bytes at 0x" + Long.toHexString(b.start), b.site);
        }
        return out;
    }
}
