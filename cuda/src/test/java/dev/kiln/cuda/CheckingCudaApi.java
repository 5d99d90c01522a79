package dev.kiln.cuda;

import jcuda.CudaException;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUgraphNode;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.jcublas.cublasHandle;
import jcuda.jcudnn.cudnnActivationDescriptor;
import jcuda.jcudnn.cudnnConvolutionBwdDataAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionBwdFilterAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnPoolingDescriptor;
import jcuda.jcudnn.cudnnTensorDescriptor;
import jcuda.runtime.cudaStream_t;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A checking stand-in for the driver, cuBLAS and cuDNN behind {@link CudaApi}: nothing is computed (device memory
 * has no contents; downloads read zeros), but every call is recorded and checked as the real libraries would need it
 * to be right: every device pointer lies inside a live allocation with room for the bytes the call touches (from the
 * tensor descriptors, the GEMM sizes and leading dimensions, or the kernel's extent rules in {@link KernelExtents});
 * every launch fits its kernel's PTX parameter list ({@link KernelSignatures}), grid and block limits; every cuDNN
 * descriptor matches the tensors of the call (convolution and pooling output shapes, batch-norm parameter shapes);
 * the backend's context is current on the calling thread; nothing that would break a stream capture happens during
 * one; a replayed graph finds every block it captured still allocated; and {@link #assertAllReleased()} names every
 * allocation, handle and descriptor left after {@code close()} with the place that created it. A failed check throws
 * {@link CudaCallViolation} at once. Not a GPU emulator: it catches wrong sizes, argument orders and leaks.
 */
final class CheckingCudaApi implements CudaApi {

    static final long GIB = 1L << 30;

    // --------------------------------------------------------------------------------------------- state

    private final DeviceMemoryMap device = new DeviceMemoryMap("device", 0x7f00_0000_0000L);
    private final DeviceMemoryMap host = new DeviceMemoryMap("page-locked host", 0x1000_0000_0000L);
    private final NativeHandles streams = new NativeHandles("stream");
    private final NativeHandles events = new NativeHandles("event");
    private final NativeHandles modules = new NativeHandles("module");
    private final NativeHandles graphs = new NativeHandles("graph");
    private final NativeHandles execs = new NativeHandles("graph exec");
    private final NativeHandles cublasHandles = new NativeHandles("cuBLAS handle");
    private final NativeHandles cudnnHandles = new NativeHandles("cuDNN handle");
    private final NativeHandles tensorDescs = new NativeHandles("tensor descriptor");
    private final NativeHandles filterDescs = new NativeHandles("filter descriptor");
    private final NativeHandles convDescs = new NativeHandles("convolution descriptor");
    private final NativeHandles poolDescs = new NativeHandles("pooling descriptor");
    private final NativeHandles activationDescs = new NativeHandles("activation descriptor");
    private final List<NativeHandles> allHandles = List.of(streams, events, modules, graphs, execs, cublasHandles,
            cudnnHandles, tensorDescs, filterDescs, convDescs, poolDescs, activationDescs);

    private final Map<String, Long> calls = new TreeMap<>();
    private final long primaryContext = NativeHandles.freshAddress();
    private final ThreadLocal<Long> current = ThreadLocal.withInitial(() -> 0L);
    private int primaryRetained;
    private long totalMemory = 80 * GIB;

    private static final class Capture {
        final int mode;
        final List<long[]> accesses = new ArrayList<>();   // address, bytes
        final List<String> names = new ArrayList<>();
        int nodes;

        Capture(int mode) {
            this.mode = mode;
        }
    }

    private final Map<Long, Integer> streamFlags = new HashMap<>();
    private final Map<Long, Capture> capturing = new HashMap<>();
    private final Map<NativePointerObject, Capture> graphContents = new IdentityHashMap<>();
    private final Map<NativePointerObject, Capture> execContents = new IdentityHashMap<>();
    private final Map<NativePointerObject, Long> handleStream = new IdentityHashMap<>();
    private final Map<NativePointerObject, Object[]> functions = new IdentityHashMap<>(); // module, name
    private final Map<NativePointerObject, KernelSignatures> moduleSignatures = new IdentityHashMap<>();
    private final Map<NativePointerObject, int[]> tensorDims = new IdentityHashMap<>();
    private final Map<NativePointerObject, int[]> filterDims = new IdentityHashMap<>();
    private final Map<NativePointerObject, int[]> convParams = new IdentityHashMap<>();
    private final Map<NativePointerObject, int[]> poolParams = new IdentityHashMap<>();
    private final Map<NativePointerObject, Integer> activationModes = new IdentityHashMap<>();
    /** Convolution algorithms reported per descriptor set, with their status, so a call with one not offered fails. */
    private final Map<String, Map<Integer, Integer>> offeredAlgorithms = new HashMap<>();
    /** The math type reported with each offered algorithm, per descriptor set. */
    private final Map<String, Map<Integer, Integer>> offeredMath = new HashMap<>();
    /** The math type set on each convolution descriptor. */
    private final Map<NativePointerObject, Integer> convMath = new IdentityHashMap<>();
    /** The group count set on each convolution descriptor; 1, cuDNN's default, when never set. */
    private final Map<NativePointerObject, Integer> convGroups = new IdentityHashMap<>();
    /** Algorithms whose convolution calls fail at run time (cuDNN's CUDNN_STATUS_EXECUTION_FAILED). */
    private final java.util.Set<Integer> failingAlgorithms = new java.util.HashSet<>();
    /** The workspace set on each cuBLAS handle; cublasSetStream drops it, as cuBLAS does. */
    private final Map<NativePointerObject, Long> cublasWorkspaceBytes = new IdentityHashMap<>();

    /**
     * What the algorithm queries return, per entry: algo, status, determinism (1 = deterministic), workspace factor
     * (workspace = factor * bytes of the x tensor), and optionally the math type (else the descriptor's). Default: a non-deterministic algorithm without workspace and a
     * deterministic one whose workspace grows with the batch.
     */
    private List<int[]> algorithms = List.of(new int[]{0, 0, 0, 0}, new int[]{1, 0, 1, 1});

    // --------------------------------------------------------------------------------------------- test hooks

    synchronized void setAlgorithms(List<int[]> entries) {
        algorithms = List.copyOf(entries);
    }

    /** Convolutions with {@code algo} fail when they run, as an algorithm cuDNN offered but cannot execute would. */
    synchronized void failAlgorithm(int algo) {
        failingAlgorithms.add(algo);
    }

    synchronized void setTotalMemory(long bytes) {
        totalMemory = bytes;
    }

    /** Another library makes its own context current on the calling thread (as cuBLAS's runtime or a diagnostic may). */
    void switchCallingThreadToAnotherContext() {
        current.set(NativeHandles.freshAddress());
    }

    synchronized long calls(String name) {
        return calls.getOrDefault(name, 0L);
    }

    synchronized Map<String, Long> callCounts() {
        return new TreeMap<>(calls);
    }

    synchronized long deviceAllocations() {
        return device.allocations();
    }

    synchronized long deviceFrees() {
        return device.frees();
    }

    synchronized long liveDeviceBytes() {
        return device.liveBytes();
    }

    synchronized int liveDeviceBlocks() {
        return device.liveBlocks();
    }

    synchronized boolean isDeviceAddressLive(long address) {
        return device.isLive(address);
    }

    /** Flags of every stream created so far. */
    synchronized List<Integer> streamFlags() {
        return new ArrayList<>(streamFlags.values());
    }

    /** Everything still allocated or alive, with where it was created; empty after a clean close(). */
    synchronized Map<String, String> leaks() {
        Map<String, String> out = new LinkedHashMap<>();
        out.putAll(device.leaks());
        out.putAll(host.leaks());
        for (NativeHandles h : allHandles) {
            out.putAll(h.leaks());
        }
        if (primaryRetained != 0) {
            out.put("primary context retained " + primaryRetained + " more time(s) than released", "");
        }
        return out;
    }

    synchronized void assertAllReleased() {
        Map<String, String> leaks = leaks();
        if (!leaks.isEmpty()) {
            StringBuilder sb = new StringBuilder("not released after close(): " + leaks.size());
            leaks.forEach((what, site) -> sb.append("\n  ").append(what).append(site.isEmpty() ? "" : " - created at " + site));
            throw new CudaCallViolation(sb.toString());
        }
    }

    // --------------------------------------------------------------------------------------------- helpers

    private void record(String call) {
        calls.merge(call, 1L, Long::sum);
    }

    private void requireContext(String call) {
        if (primaryRetained <= 0) {
            throw new CudaCallViolation(call + ": no retained primary context");
        }
        long now = current.get();
        if (now != primaryContext) {
            throw new CudaCallViolation(call + ": called with " + (now == 0 ? "no context" : "another context (0x"
                    + Long.toHexString(now) + ")") + " current on thread " + Thread.currentThread().getName()
                    + ", not the backend's");
        }
    }

    private long streamOf(String call, CUstream s) {
        streams.require(call, "stream", s);
        return NativeHandles.address(s);
    }

    /** The capture running on {@code stream}, or null. */
    private Capture captureOn(long stream) {
        return capturing.get(stream);
    }

    private void noCapture(String call, long stream) {
        if (capturing.containsKey(stream)) {
            throw new CudaCallViolation(call + " on a stream that is capturing: the capture is invalidated"
                    + " (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED)");
        }
    }

    private void anyCaptureForbids(String call) {
        if (!capturing.isEmpty()) {
            throw new CudaCallViolation(call + " while a stream capture is running invalidates it");
        }
    }

    /** Checks a device range used by stream work and, during a capture, records it for every replay. */
    private void access(String call, String what, long address, long bytes, long stream) {
        if (bytes <= 0) {
            return;
        }
        device.require(call, what, address, bytes);
        Capture c = captureOn(stream);
        if (c != null) {
            c.accesses.add(new long[]{address, bytes});
            c.names.add(call + " " + what);
        }
    }

    private void access(String call, String what, Pointer p, long bytes, long stream) {
        if (bytes <= 0) {
            return;
        }
        if (p == null) {
            throw new CudaCallViolation(call + ": " + what + " is null (needs " + bytes + " bytes)");
        }
        access(call, what, DeviceAddress.of(p), bytes, stream);
    }

    private void node(long stream) {
        Capture c = captureOn(stream);
        if (c != null) {
            c.nodes++;
        }
    }

    private DeviceMemoryMap.Block hostBlock(String call, String what, Pointer p, long bytes) {
        return host.require(call, what, DeviceAddress.of(p), bytes);
    }

    private static void set(NativePointerObject o) {
        NativeHandles.setAddress(o, NativeHandles.freshAddress());
    }

    // --------------------------------------------------------------------------------------------- seam extras

    @Override
    public synchronized void enableExceptions() {
        record("enableExceptions");
    }

    @Override
    public synchronized void launchKernel(CUfunction function, String kernel, int grid, int block, CUstream stream, Object[] args) {
        String call = "launch " + kernel;
        record("cuLaunchKernel");
        record(call);
        requireContext(call);
        long s = streamOf(call, stream);
        Object[] f = functions.get(function);
        if (f == null) {
            throw new CudaCallViolation(call + ": the function was not obtained from cuModuleGetFunction");
        }
        if (!modules.isLive((NativePointerObject) f[0])) {
            throw new CudaCallViolation(call + ": its module was unloaded");
        }
        if (!kernel.equals(f[1])) {
            throw new CudaCallViolation(call + ": the function handle is " + f[1] + ", not " + kernel);
        }
        if (grid < 1 || grid > 65535) {
            throw new CudaCallViolation(call + ": grid of " + grid + " blocks (Kiln launches 1..65535)");
        }
        if (block < 1 || block > 1024) {
            throw new CudaCallViolation(call + ": block of " + block + " threads (1..1024)");
        }
        if (KernelExtents.BLOCK_256.contains(kernel) && block != 256) {
            throw new CudaCallViolation(call + ": its shared-memory reduction needs 256 threads per block, got " + block);
        }
        try {
            moduleSignatures.get(f[0]).check(kernel, args);
        } catch (IllegalArgumentException e) {
            throw new CudaCallViolation(call + ": " + e.getMessage());
        }
        for (KernelExtents.Access a : KernelExtents.of(kernel, args)) {
            long address;
            if (a.index() < 0) {
                address = KernelExtents.tableAddress((long[]) args[0], a.index());
            } else {
                Object v = args[a.index()];
                address = v == null ? 0 : v instanceof Long l ? l : DeviceAddress.of((Pointer) v);
            }
            if (address == 0 && (a.nullable() || a.bytes() == 0)) {
                continue;
            }
            access(call, a.name(), address, a.bytes(), s);
        }
        node(s);
    }

    @Override
    public synchronized ByteBuffer hostBuffer(Pointer p, long bytes) {
        record("hostBuffer");
        DeviceMemoryMap.Block b = hostBlock("hostBuffer", "host", p, bytes);
        return host.hostBuffer(b);
    }

    // --------------------------------------------------------------------------------------------- driver

    @Override
    public synchronized void cuInit(int flags) {
        record("cuInit");
    }

    @Override
    public synchronized void cuDeviceGetCount(int[] count) {
        record("cuDeviceGetCount");
        count[0] = 1;
    }

    @Override
    public synchronized void cuDeviceGet(CUdevice d, int ordinal) {
        record("cuDeviceGet");
        if (ordinal != 0) {
            throw new CudaException("CUDA_ERROR_INVALID_DEVICE");
        }
        NativeHandles.setAddress(d, 1);
    }

    @Override
    public synchronized void cuDeviceGetName(byte[] name, int length, CUdevice d) {
        record("cuDeviceGetName");
        byte[] n = "Kiln checking stand-in".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        System.arraycopy(n, 0, name, 0, Math.min(n.length, length - 1));
    }

    @Override
    public synchronized void cuDeviceTotalMem(long[] bytes, CUdevice d) {
        record("cuDeviceTotalMem");
        bytes[0] = totalMemory;
    }

    @Override
    public synchronized void cuDeviceGetAttribute(int[] value, int attribute, CUdevice d) {
        record("cuDeviceGetAttribute");
        value[0] = 9; // compute capability 9.x, and any other attribute reads as 9
    }

    @Override
    public synchronized void cuDevicePrimaryCtxRetain(CUcontext ctx, CUdevice d) {
        record("cuDevicePrimaryCtxRetain");
        primaryRetained++;
        NativeHandles.setAddress(ctx, primaryContext);
    }

    @Override
    public synchronized void cuDevicePrimaryCtxRelease(CUdevice d) {
        record("cuDevicePrimaryCtxRelease");
        if (primaryRetained <= 0) {
            throw new CudaCallViolation("cuDevicePrimaryCtxRelease: the primary context is not retained");
        }
        primaryRetained--;
    }

    @Override
    public synchronized void cuCtxSetCurrent(CUcontext ctx) {
        record("cuCtxSetCurrent");
        current.set(ctx == null ? 0L : NativeHandles.address(ctx));
    }

    @Override
    public synchronized void cuCtxGetCurrent(CUcontext ctx) {
        record("cuCtxGetCurrent");
        NativeHandles.setAddress(ctx, current.get());
    }

    @Override
    public synchronized void cuStreamCreate(CUstream stream, int flags) {
        record("cuStreamCreate");
        requireContext("cuStreamCreate");
        streams.create("cuStreamCreate", stream);
        streamFlags.put(NativeHandles.address(stream), flags);
    }

    @Override
    public synchronized void cuStreamDestroy(CUstream stream) {
        record("cuStreamDestroy");
        long s = streamOf("cuStreamDestroy", stream);
        noCapture("cuStreamDestroy", s);
        streams.destroy("cuStreamDestroy", stream);
    }

    @Override
    public synchronized void cuStreamSynchronize(CUstream stream) {
        record("cuStreamSynchronize");
        requireContext("cuStreamSynchronize");
        noCapture("cuStreamSynchronize", streamOf("cuStreamSynchronize", stream));
    }

    @Override
    public synchronized void cuMemGetInfo(long[] free, long[] total) {
        record("cuMemGetInfo");
        free[0] = totalMemory - device.liveBytes();
        total[0] = totalMemory;
    }

    @Override
    public synchronized void cuMemAlloc(CUdeviceptr dptr, long bytes) {
        record("cuMemAlloc");
        requireContext("cuMemAlloc");
        for (Map.Entry<Long, Capture> c : capturing.entrySet()) {
            if (c.getValue().mode != 2) { // CU_STREAM_CAPTURE_MODE_RELAXED
                throw new CudaCallViolation("cuMemAlloc during a capture that is not in relaxed mode");
            }
        }
        if (bytes <= 0) {
            throw new CudaCallViolation("cuMemAlloc of " + bytes + " bytes");
        }
        if (device.liveBytes() + bytes > totalMemory) {
            throw new CudaException("CUDA_ERROR_OUT_OF_MEMORY");
        }
        NativeHandles.setAddress(dptr, device.allocate(bytes).start);
    }

    @Override
    public synchronized void cuMemFree(CUdeviceptr dptr) {
        record("cuMemFree");
        requireContext("cuMemFree");
        anyCaptureForbids("cuMemFree");
        device.free("cuMemFree", DeviceAddress.of(dptr));
    }

    @Override
    public synchronized void cuMemAllocHost(Pointer p, long bytes) {
        record("cuMemAllocHost");
        requireContext("cuMemAllocHost");
        NativeHandles.setAddress(p, host.allocate(bytes).start);
    }

    @Override
    public synchronized void cuMemFreeHost(Pointer p) {
        record("cuMemFreeHost");
        host.free("cuMemFreeHost", DeviceAddress.of(p));
    }

    @Override
    public synchronized void cuMemsetD32Async(CUdeviceptr dst, int value, long count, CUstream stream) {
        record("cuMemsetD32Async");
        requireContext("cuMemsetD32Async");
        long s = streamOf("cuMemsetD32Async", stream);
        access("cuMemsetD32Async", "dst", dst, count * 4, s);
        node(s);
    }

    @Override
    public synchronized void cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, long bytes, CUstream stream) {
        record("cuMemcpyDtoDAsync");
        requireContext("cuMemcpyDtoDAsync");
        long s = streamOf("cuMemcpyDtoDAsync", stream);
        access("cuMemcpyDtoDAsync", "src", src, bytes, s);
        access("cuMemcpyDtoDAsync", "dst", dst, bytes, s);
        node(s);
    }

    @Override
    public synchronized void cuMemcpyHtoDAsync(CUdeviceptr dst, Pointer src, long bytes, CUstream stream) {
        record("cuMemcpyHtoDAsync");
        requireContext("cuMemcpyHtoDAsync");
        long s = streamOf("cuMemcpyHtoDAsync", stream);
        noCapture("cuMemcpyHtoDAsync (a host transfer)", s);
        hostBlock("cuMemcpyHtoDAsync", "src", src, bytes);
        access("cuMemcpyHtoDAsync", "dst", dst, bytes, s);
    }

    @Override
    public synchronized void cuMemcpyDtoHAsync(Pointer dst, CUdeviceptr src, long bytes, CUstream stream) {
        record("cuMemcpyDtoHAsync");
        requireContext("cuMemcpyDtoHAsync");
        long s = streamOf("cuMemcpyDtoHAsync", stream);
        noCapture("cuMemcpyDtoHAsync (a host transfer)", s);
        access("cuMemcpyDtoHAsync", "src", src, bytes, s);
        long at = DeviceAddress.of(dst);
        DeviceMemoryMap.Block b = hostBlock("cuMemcpyDtoHAsync", "dst", dst, bytes);
        ByteBuffer hb = host.hostBuffer(b);
        for (long i = 0; i < bytes; i++) {
            hb.put((int) (at - b.start + i), (byte) 0); // device memory has no contents here: it reads as zeros
        }
    }

    @Override
    public synchronized void cuEventCreate(CUevent event, int flags) {
        record("cuEventCreate");
        requireContext("cuEventCreate");
        events.create("cuEventCreate", event);
    }

    @Override
    public synchronized void cuEventDestroy(CUevent event) {
        record("cuEventDestroy");
        events.destroy("cuEventDestroy", event);
    }

    @Override
    public synchronized void cuEventRecord(CUevent event, CUstream stream) {
        record("cuEventRecord");
        events.require("cuEventRecord", "event", event);
        streamOf("cuEventRecord", stream);
    }

    @Override
    public synchronized void cuEventSynchronize(CUevent event) {
        record("cuEventSynchronize");
        events.require("cuEventSynchronize", "event", event);
        anyCaptureForbids("cuEventSynchronize");
    }

    @Override
    public synchronized void cuModuleLoadData(CUmodule module, byte[] image) {
        record("cuModuleLoadData");
        requireContext("cuModuleLoadData");
        anyCaptureForbids("cuModuleLoadData (loading code)");
        if (image.length == 0 || image[image.length - 1] != 0) {
            throw new CudaCallViolation("cuModuleLoadData: PTX text must be NUL-terminated");
        }
        modules.create("cuModuleLoadData", module);
        KernelSignatures sig = new KernelSignatures();
        sig.addModule(image);
        moduleSignatures.put(module, sig);
    }

    @Override
    public synchronized void cuModuleGetFunction(CUfunction function, CUmodule module, String name) {
        record("cuModuleGetFunction");
        // with lazy loading (the default since CUDA 12.2) the first lookup of a kernel loads its code
        anyCaptureForbids("cuModuleGetFunction (loads the kernel's code under lazy loading)");
        modules.require("cuModuleGetFunction", "module", module);
        if (moduleSignatures.get(module).parameters(name) == null) {
            throw new CudaException("CUDA_ERROR_NOT_FOUND: no kernel " + name + " in the module");
        }
        set(function);
        functions.put(function, new Object[]{module, name});
    }

    @Override
    public synchronized void cuModuleUnload(CUmodule module) {
        record("cuModuleUnload");
        modules.destroy("cuModuleUnload", module);
    }

    @Override
    public synchronized void cuStreamBeginCapture(CUstream stream, int mode) {
        record("cuStreamBeginCapture");
        requireContext("cuStreamBeginCapture");
        long s = streamOf("cuStreamBeginCapture", stream);
        if (capturing.containsKey(s)) {
            throw new CudaCallViolation("cuStreamBeginCapture: the stream is already capturing");
        }
        capturing.put(s, new Capture(mode));
    }

    @Override
    public synchronized void cuStreamEndCapture(CUstream stream, CUgraph graph) {
        record("cuStreamEndCapture");
        long s = streamOf("cuStreamEndCapture", stream);
        Capture c = capturing.remove(s);
        if (c == null) {
            throw new CudaException("CUDA_ERROR_ILLEGAL_STATE: the stream is not capturing");
        }
        graphs.create("cuStreamEndCapture", graph);
        graphContents.put(graph, c);
    }

    @Override
    public synchronized void cuGraphGetNodes(CUgraph graph, CUgraphNode[] nodes, long[] count) {
        record("cuGraphGetNodes");
        graphs.require("cuGraphGetNodes", "graph", graph);
        count[0] = graphContents.get(graph).nodes;
    }

    @Override
    public synchronized void cuGraphInstantiate(CUgraphExec exec, CUgraph graph, long flags) {
        record("cuGraphInstantiate");
        graphs.require("cuGraphInstantiate", "graph", graph);
        execs.create("cuGraphInstantiate", exec);
        execContents.put(exec, graphContents.get(graph));
    }

    @Override
    public synchronized void cuGraphUpload(CUgraphExec exec, CUstream stream) {
        record("cuGraphUpload");
        execs.require("cuGraphUpload", "graph exec", exec);
        streamOf("cuGraphUpload", stream);
    }

    @Override
    public synchronized void cuGraphLaunch(CUgraphExec exec, CUstream stream) {
        record("cuGraphLaunch");
        requireContext("cuGraphLaunch");
        execs.require("cuGraphLaunch", "graph exec", exec);
        long s = streamOf("cuGraphLaunch", stream);
        noCapture("cuGraphLaunch", s);
        Capture c = execContents.get(exec);
        for (int i = 0; i < c.accesses.size(); i++) {
            long[] a = c.accesses.get(i);
            device.require("replay of a captured graph: " + c.names.get(i), "captured address", a[0], a[1]);
        }
    }

    @Override
    public synchronized void cuGraphExecDestroy(CUgraphExec exec) {
        record("cuGraphExecDestroy");
        execs.destroy("cuGraphExecDestroy", exec);
        execContents.remove(exec);
    }

    @Override
    public synchronized void cuGraphDestroy(CUgraph graph) {
        record("cuGraphDestroy");
        graphs.destroy("cuGraphDestroy", graph);
        graphContents.remove(graph);
    }

    // --------------------------------------------------------------------------------------------- cuBLAS

    @Override
    public synchronized void cublasCreate(cublasHandle handle) {
        record("cublasCreate");
        requireContext("cublasCreate");
        cublasHandles.create("cublasCreate", handle);
    }

    @Override
    public synchronized void cublasDestroy(cublasHandle handle) {
        record("cublasDestroy");
        cublasHandles.destroy("cublasDestroy", handle);
        handleStream.remove(handle);
        cublasWorkspaceBytes.remove(handle);
    }

    @Override
    public synchronized void cublasSetStream(cublasHandle handle, cudaStream_t stream) {
        record("cublasSetStream");
        cublasHandles.require("cublasSetStream", "handle", handle);
        handleStream.put(handle, NativeHandles.address(stream));
        // cuBLAS: "cublasSetStream ... unconditionally resets the cuBLAS library workspace back to the default
        // workspace pool" - a workspace set before it is forgotten
        cublasWorkspaceBytes.remove(handle);
    }

    @Override
    public synchronized void cublasSetWorkspace(cublasHandle handle, Pointer workspace, long workspaceBytes) {
        record("cublasSetWorkspace");
        cublasHandles.require("cublasSetWorkspace", "handle", handle);
        device.require("cublasSetWorkspace", "workspace", DeviceAddress.of(workspace), workspaceBytes);
        cublasWorkspaceBytes.put(handle, workspaceBytes);
    }

    @Override
    public synchronized void cublasSetMathMode(cublasHandle handle, int mode) {
        record("cublasSetMathMode");
        cublasHandles.require("cublasSetMathMode", "handle", handle);
    }

    private long boundStream(String call, NativePointerObject handle, NativeHandles kind) {
        kind.require(call, "handle", handle);
        requireContext(call);
        Long s = handleStream.get(handle);
        if (s == null) {
            throw new CudaCallViolation(call + ": the handle has no stream set (it would run on the legacy NULL stream)");
        }
        if (!streamFlags.containsKey(s)) {
            throw new CudaCallViolation(call + ": the handle's stream is not a stream the backend created");
        }
        return s;
    }

    @Override
    public synchronized void cublasSgemm(cublasHandle handle, int transa, int transb, int m, int n, int k, Pointer alpha,
                                         Pointer A, int lda, Pointer B, int ldb, Pointer beta, Pointer C, int ldc) {
        String call = "cublasSgemm";
        record(call);
        long s = boundStream(call, handle, cublasHandles);
        if (cublasWorkspaceBytes.getOrDefault(handle, 0L) == 0) {
            throw new CudaCallViolation(call + ": no workspace set (cuBLAS would allocate one, also inside a capture)");
        }
        if ((transa != 0 && transa != 1) || (transb != 0 && transb != 1) || m < 0 || n < 0 || k < 0) {
            throw new CudaCallViolation(call + ": bad arguments transa=" + transa + " transb=" + transb + " m=" + m + " n=" + n + " k=" + k);
        }
        int rowsA = transa == 0 ? m : k;
        int colsA = transa == 0 ? k : m;
        int rowsB = transb == 0 ? k : n;
        int colsB = transb == 0 ? n : k;
        if (lda < Math.max(1, rowsA) || ldb < Math.max(1, rowsB) || ldc < Math.max(1, m)) {
            throw new CudaCallViolation(call + ": leading dimensions lda=" + lda + " ldb=" + ldb + " ldc=" + ldc
                    + " below the rows of A (" + rowsA + "), B (" + rowsB + "), C (" + m + ")");
        }
        if (alpha == null || beta == null || NativeHandles.address(alpha) != 0 || NativeHandles.address(beta) != 0) {
            throw new CudaCallViolation(call + ": alpha and beta must be host values (Pointer.to(float[]))");
        }
        if (m > 0 && n > 0) {
            if (k > 0) {
                access(call, "A", A, ((long) lda * (colsA - 1) + rowsA) * 4, s);
                access(call, "B", B, ((long) ldb * (colsB - 1) + rowsB) * 4, s);
            }
            access(call, "C", C, ((long) ldc * (n - 1) + m) * 4, s);
        }
        node(s);
    }

    // --------------------------------------------------------------------------------------------- cuDNN: handles, descriptors

    @Override
    public synchronized void cudnnCreate(cudnnHandle handle) {
        record("cudnnCreate");
        requireContext("cudnnCreate");
        cudnnHandles.create("cudnnCreate", handle);
    }

    @Override
    public synchronized void cudnnDestroy(cudnnHandle handle) {
        record("cudnnDestroy");
        cudnnHandles.destroy("cudnnDestroy", handle);
        handleStream.remove(handle);
    }

    @Override
    public synchronized void cudnnSetStream(cudnnHandle handle, cudaStream_t stream) {
        record("cudnnSetStream");
        cudnnHandles.require("cudnnSetStream", "handle", handle);
        handleStream.put(handle, NativeHandles.address(stream));
    }

    @Override
    public synchronized void cudnnCreateTensorDescriptor(cudnnTensorDescriptor d) {
        record("cudnnCreateTensorDescriptor");
        tensorDescs.create("cudnnCreateTensorDescriptor", d);
        tensorDims.remove(d);
    }

    @Override
    public synchronized void cudnnSetTensor4dDescriptor(cudnnTensorDescriptor d, int format, int dataType, int n, int c, int h, int w) {
        record("cudnnSetTensor4dDescriptor");
        tensorDescs.require("cudnnSetTensor4dDescriptor", "descriptor", d);
        if (n < 1 || c < 1 || h < 1 || w < 1) {
            throw new CudaCallViolation("cudnnSetTensor4dDescriptor: dimensions must be >= 1, got " + n + "x" + c + "x" + h + "x" + w
                    + " (CUDNN_STATUS_BAD_PARAM)");
        }
        if (format != 0 || dataType != 0) {
            throw new CudaCallViolation("cudnnSetTensor4dDescriptor: Kiln's tensors are NCHW float32, got format " + format
                    + " data type " + dataType);
        }
        tensorDims.put(d, new int[]{n, c, h, w});
    }

    @Override
    public synchronized void cudnnDestroyTensorDescriptor(cudnnTensorDescriptor d) {
        record("cudnnDestroyTensorDescriptor");
        tensorDescs.destroy("cudnnDestroyTensorDescriptor", d);
    }

    @Override
    public synchronized void cudnnCreateFilterDescriptor(cudnnFilterDescriptor d) {
        record("cudnnCreateFilterDescriptor");
        filterDescs.create("cudnnCreateFilterDescriptor", d);
    }

    @Override
    public synchronized void cudnnSetFilter4dDescriptor(cudnnFilterDescriptor d, int dataType, int format, int k, int c, int h, int w) {
        record("cudnnSetFilter4dDescriptor");
        filterDescs.require("cudnnSetFilter4dDescriptor", "descriptor", d);
        if (k < 1 || c < 1 || h < 1 || w < 1 || dataType != 0 || format != 0) {
            throw new CudaCallViolation("cudnnSetFilter4dDescriptor: bad filter " + k + "x" + c + "x" + h + "x" + w
                    + " (data type " + dataType + ", format " + format + ")");
        }
        filterDims.put(d, new int[]{k, c, h, w});
    }

    @Override
    public synchronized void cudnnDestroyFilterDescriptor(cudnnFilterDescriptor d) {
        record("cudnnDestroyFilterDescriptor");
        filterDescs.destroy("cudnnDestroyFilterDescriptor", d);
    }

    @Override
    public synchronized void cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor d) {
        record("cudnnCreateConvolutionDescriptor");
        convDescs.create("cudnnCreateConvolutionDescriptor", d);
    }

    @Override
    public synchronized void cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor d, int padH, int padW, int strideH,
                                                             int strideW, int dilationH, int dilationW, int mode, int dataType) {
        record("cudnnSetConvolution2dDescriptor");
        convDescs.require("cudnnSetConvolution2dDescriptor", "descriptor", d);
        if (padH < 0 || padW < 0 || strideH < 1 || strideW < 1 || dilationH < 1 || dilationW < 1) {
            throw new CudaCallViolation("cudnnSetConvolution2dDescriptor: pad " + padH + "," + padW + " stride " + strideH
                    + "," + strideW + " dilation " + dilationH + "," + dilationW);
        }
        convParams.put(d, new int[]{padH, padW, strideH, strideW, dilationH, dilationW});
    }

    @Override
    public synchronized void cudnnSetConvolutionMathType(cudnnConvolutionDescriptor d, int mathType) {
        record("cudnnSetConvolutionMathType");
        convDescs.require("cudnnSetConvolutionMathType", "descriptor", d);
        if (mathType < 0 || mathType > 3) {
            throw new CudaCallViolation("cudnnSetConvolutionMathType: no math type " + mathType);
        }
        convMath.put(d, mathType);
    }

    @Override
    public synchronized void cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor d, int groupCount) {
        record("cudnnSetConvolutionGroupCount");
        convDescs.require("cudnnSetConvolutionGroupCount", "descriptor", d);
        if (groupCount < 1) {
            throw new CudaCallViolation("cudnnSetConvolutionGroupCount: group count " + groupCount + " (CUDNN_STATUS_BAD_PARAM)");
        }
        convGroups.put(d, groupCount);
    }

    @Override
    public synchronized void cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor d) {
        record("cudnnDestroyConvolutionDescriptor");
        convDescs.destroy("cudnnDestroyConvolutionDescriptor", d);
        convMath.remove(d);
        convGroups.remove(d);
    }

    @Override
    public synchronized void cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor d) {
        record("cudnnCreatePoolingDescriptor");
        poolDescs.create("cudnnCreatePoolingDescriptor", d);
    }

    @Override
    public synchronized void cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor d, int mode, int nanOpt, int windowH, int windowW,
                                                         int padH, int padW, int strideH, int strideW) {
        record("cudnnSetPooling2dDescriptor");
        poolDescs.require("cudnnSetPooling2dDescriptor", "descriptor", d);
        if (windowH < 1 || windowW < 1 || padH < 0 || padW < 0 || strideH < 1 || strideW < 1 || padH >= windowH || padW >= windowW) {
            throw new CudaCallViolation("cudnnSetPooling2dDescriptor: window " + windowH + "x" + windowW + " pad " + padH + ","
                    + padW + " stride " + strideH + "," + strideW + " (CUDNN_STATUS_BAD_PARAM)");
        }
        poolParams.put(d, new int[]{mode, windowH, windowW, padH, padW, strideH, strideW});
    }

    @Override
    public synchronized void cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor d) {
        record("cudnnDestroyPoolingDescriptor");
        poolDescs.destroy("cudnnDestroyPoolingDescriptor", d);
    }

    @Override
    public synchronized void cudnnCreateActivationDescriptor(cudnnActivationDescriptor d) {
        record("cudnnCreateActivationDescriptor");
        activationDescs.create("cudnnCreateActivationDescriptor", d);
    }

    @Override
    public synchronized void cudnnSetActivationDescriptor(cudnnActivationDescriptor d, int mode, int nanOpt, double coef) {
        record("cudnnSetActivationDescriptor");
        activationDescs.require("cudnnSetActivationDescriptor", "descriptor", d);
        activationModes.put(d, mode);
    }

    @Override
    public synchronized void cudnnDestroyActivationDescriptor(cudnnActivationDescriptor d) {
        record("cudnnDestroyActivationDescriptor");
        activationDescs.destroy("cudnnDestroyActivationDescriptor", d);
    }

    // --------------------------------------------------------------------------------------------- cuDNN: shapes

    private int[] dims(String call, String what, cudnnTensorDescriptor d) {
        tensorDescs.require(call, what, d);
        int[] v = tensorDims.get(d);
        if (v == null) {
            throw new CudaCallViolation(call + ": " + what + " was created but never set");
        }
        return v;
    }

    private int[] filter(String call, cudnnFilterDescriptor d) {
        filterDescs.require(call, "filter descriptor", d);
        int[] v = filterDims.get(d);
        if (v == null) {
            throw new CudaCallViolation(call + ": filter descriptor never set");
        }
        return v;
    }

    private static long bytes(int[] d) {
        return 4L * d[0] * d[1] * d[2] * d[3];
    }

    private static String shape(int[] d) {
        return Arrays.toString(d);
    }

    private static void sameShape(String call, String a, int[] da, String b, int[] db) {
        if (!Arrays.equals(da, db)) {
            throw new CudaCallViolation(call + ": " + a + " is " + shape(da) + " but " + b + " is " + shape(db));
        }
    }

    /** The (n, k, outH, outW) a convolution of x with w must produce. */
    private int[] convOutput(String call, int[] x, int[] w, cudnnConvolutionDescriptor conv) {
        convDescs.require(call, "convolution descriptor", conv);
        int[] p = convParams.get(conv);
        if (p == null) {
            throw new CudaCallViolation(call + ": convolution descriptor never set");
        }
        int groups = convGroups.getOrDefault(conv, 1);
        if (x[1] != w[1] * groups) {
            throw new CudaCallViolation(call + ": x has " + x[1] + " channels, the filter " + shape(w) + " in " + groups
                    + " group(s) expects " + w[1] * groups);
        }
        if (w[0] % groups != 0) {
            throw new CudaCallViolation(call + ": the filter's " + w[0] + " output channels do not split into " + groups
                    + " groups");
        }
        int oh = (x[2] + 2 * p[0] - p[4] * (w[2] - 1) - 1) / p[2] + 1;
        int ow = (x[3] + 2 * p[1] - p[5] * (w[3] - 1) - 1) / p[3] + 1;
        return new int[]{x[0], w[0], oh, ow};
    }

    private long workspaceFor(int algo, int[] x) {
        for (int[] e : algorithms) {
            if (e[0] == algo) {
                return (long) e[3] * bytes(x);
            }
        }
        return 0;
    }

    private String convKey(int[] x, int[] w, int[] y, String direction) {
        return direction + shape(x) + shape(w) + shape(y);
    }

    private void requireOffered(String call, String key, int algo, cudnnConvolutionDescriptor conv) {
        Map<Integer, Integer> offered = offeredAlgorithms.get(key);
        if (offered == null) {
            throw new CudaCallViolation(call + ": no algorithm query was made for this shape");
        }
        Integer status = offered.get(algo);
        if (status == null || status != 0) {
            throw new CudaCallViolation(call + ": algorithm " + algo + " was " + (status == null ? "not offered"
                    : "reported with status " + status) + " for " + key);
        }
        if (conv != null) {
            int reported = offeredMath.get(key).get(algo);
            int set = convMath.getOrDefault(conv, 0);
            // default math run as FMA only narrows it (no TF32); anything else must be what cuDNN reported
            if (set != reported && !(reported == 0 && set == 3)) {
                throw new CudaCallViolation(call + ": algorithm " + algo + " was offered with math type " + reported
                        + ", the descriptor holds " + set);
            }
            if (failingAlgorithms.contains(algo)) {
                throw new CudaException(call + " failed: CUDNN_STATUS_EXECUTION_FAILED (5000)");
            }
        }
    }

    private int offer(String key, int requested, int[] returned, int[] x, cudnnConvolutionDescriptor conv,
                      java.util.function.IntFunction<Object> slot) {
        Map<Integer, Integer> offered = new HashMap<>();
        Map<Integer, Integer> maths = new HashMap<>();
        int count = Math.min(requested, algorithms.size());
        for (int i = 0; i < count; i++) {
            int[] e = algorithms.get(i);
            offered.put(e[0], e[1]);
            int math = e.length > 4 ? e[4] : convMath.getOrDefault(conv, 0);
            maths.put(e[0], math);
            Object perf = slot.apply(i);
            long memory = (long) e[3] * bytes(x);
            if (perf instanceof cudnnConvolutionFwdAlgoPerf f) {
                f.algo = e[0];
                f.status = e[1];
                f.determinism = e[2];
                f.memory = memory;
                f.mathType = math;
            } else if (perf instanceof cudnnConvolutionBwdDataAlgoPerf f) {
                f.algo = e[0];
                f.status = e[1];
                f.determinism = e[2];
                f.memory = memory;
                f.mathType = math;
            } else if (perf instanceof cudnnConvolutionBwdFilterAlgoPerf f) {
                f.algo = e[0];
                f.status = e[1];
                f.determinism = e[2];
                f.memory = memory;
                f.mathType = math;
            }
        }
        offeredAlgorithms.put(key, offered);
        offeredMath.put(key, maths);
        returned[0] = count;
        return count;
    }

    @Override
    public synchronized void cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnFilterDescriptor wDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor yDesc, int requested,
            int[] returned, cudnnConvolutionFwdAlgoPerf[] perf) {
        String call = "cudnnGetConvolutionForwardAlgorithm_v7";
        record(call);
        cudnnHandles.require(call, "handle", handle);
        int[] x = dims(call, "xDesc", xDesc);
        int[] w = filter(call, wDesc);
        int[] y = dims(call, "yDesc", yDesc);
        sameShape(call, "yDesc", y, "the convolution's output", convOutput(call, x, w, convDesc));
        offer(convKey(x, w, y, "fwd"), Math.min(requested, perf.length), returned, x, convDesc, i -> perf[i]);
    }

    @Override
    public synchronized void cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle handle, cudnnFilterDescriptor wDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor dxDesc, int requested,
            int[] returned, cudnnConvolutionBwdDataAlgoPerf[] perf) {
        String call = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
        record(call);
        cudnnHandles.require(call, "handle", handle);
        int[] w = filter(call, wDesc);
        int[] dy = dims(call, "dyDesc", dyDesc);
        int[] dx = dims(call, "dxDesc", dxDesc);
        sameShape(call, "dyDesc", dy, "the convolution's output", convOutput(call, dx, w, convDesc));
        offer(convKey(dx, w, dy, "bwdData"), Math.min(requested, perf.length), returned, dx, convDesc, i -> perf[i]);
    }

    @Override
    public synchronized void cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnFilterDescriptor dwDesc, int requested,
            int[] returned, cudnnConvolutionBwdFilterAlgoPerf[] perf) {
        String call = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
        record(call);
        cudnnHandles.require(call, "handle", handle);
        int[] x = dims(call, "xDesc", xDesc);
        int[] dy = dims(call, "dyDesc", dyDesc);
        int[] w = filter(call, dwDesc);
        sameShape(call, "dyDesc", dy, "the convolution's output", convOutput(call, x, w, convDesc));
        offer(convKey(x, w, dy, "bwdFilter"), Math.min(requested, perf.length), returned, x, convDesc, i -> perf[i]);
    }

    @Override
    public synchronized void cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnFilterDescriptor wDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor yDesc, int algo, long[] bytes) {
        String call = "cudnnGetConvolutionForwardWorkspaceSize";
        record(call);
        int[] x = dims(call, "xDesc", xDesc);
        int[] w = filter(call, wDesc);
        int[] y = dims(call, "yDesc", yDesc);
        requireOffered(call, convKey(x, w, y, "fwd"), algo, null);
        bytes[0] = workspaceFor(algo, x);
    }

    @Override
    public synchronized void cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle handle, cudnnFilterDescriptor wDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnTensorDescriptor dxDesc, int algo, long[] bytes) {
        String call = "cudnnGetConvolutionBackwardDataWorkspaceSize";
        record(call);
        int[] w = filter(call, wDesc);
        int[] dy = dims(call, "dyDesc", dyDesc);
        int[] dx = dims(call, "dxDesc", dxDesc);
        requireOffered(call, convKey(dx, w, dy, "bwdData"), algo, null);
        bytes[0] = workspaceFor(algo, dx);
    }

    @Override
    public synchronized void cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle handle, cudnnTensorDescriptor xDesc,
            cudnnTensorDescriptor dyDesc, cudnnConvolutionDescriptor convDesc, cudnnFilterDescriptor dwDesc, int algo, long[] bytes) {
        String call = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
        record(call);
        int[] x = dims(call, "xDesc", xDesc);
        int[] dy = dims(call, "dyDesc", dyDesc);
        int[] w = filter(call, dwDesc);
        requireOffered(call, convKey(x, w, dy, "bwdFilter"), algo, null);
        bytes[0] = workspaceFor(algo, x);
    }

    private void workspace(String call, int algo, int[] x, Pointer workspace, long workspaceBytes, long s) {
        long need = workspaceFor(algo, x);
        if (workspaceBytes < need) {
            throw new CudaCallViolation(call + ": algorithm " + algo + " needs " + need + " workspace bytes, the call passes "
                    + workspaceBytes);
        }
        if (workspaceBytes > 0) {
            access(call, "workspace", workspace, workspaceBytes, s);
        }
    }

    @Override
    public synchronized void cudnnConvolutionForward(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor xDesc, Pointer x,
            cudnnFilterDescriptor wDesc, Pointer w, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        String call = "cudnnConvolutionForward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = dims(call, "xDesc", xDesc);
        int[] wd = filter(call, wDesc);
        int[] yd = dims(call, "yDesc", yDesc);
        sameShape(call, "yDesc", yd, "the convolution's output", convOutput(call, xd, wd, convDesc));
        requireOffered(call, convKey(xd, wd, yd, "fwd"), algo, convDesc);
        workspace(call, algo, xd, workspace, workspaceBytes, s);
        access(call, "x", x, bytes(xd), s);
        access(call, "w", w, bytes(wd), s);
        access(call, "y", y, bytes(yd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnConvolutionBackwardData(cudnnHandle handle, Pointer alpha, cudnnFilterDescriptor wDesc,
            Pointer w, cudnnTensorDescriptor dyDesc, Pointer dy, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx) {
        String call = "cudnnConvolutionBackwardData";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] wd = filter(call, wDesc);
        int[] dyd = dims(call, "dyDesc", dyDesc);
        int[] dxd = dims(call, "dxDesc", dxDesc);
        sameShape(call, "dyDesc", dyd, "the convolution's output", convOutput(call, dxd, wd, convDesc));
        requireOffered(call, convKey(dxd, wd, dyd, "bwdData"), algo, convDesc);
        workspace(call, algo, dxd, workspace, workspaceBytes, s);
        access(call, "w", w, bytes(wd), s);
        access(call, "dy", dy, bytes(dyd), s);
        access(call, "dx", dx, bytes(dxd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnConvolutionBackwardFilter(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor xDesc,
            Pointer x, cudnnTensorDescriptor dyDesc, Pointer dy, cudnnConvolutionDescriptor convDesc, int algo, Pointer workspace,
            long workspaceBytes, Pointer beta, cudnnFilterDescriptor dwDesc, Pointer dw) {
        String call = "cudnnConvolutionBackwardFilter";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = dims(call, "xDesc", xDesc);
        int[] dyd = dims(call, "dyDesc", dyDesc);
        int[] wd = filter(call, dwDesc);
        sameShape(call, "dyDesc", dyd, "the convolution's output", convOutput(call, xd, wd, convDesc));
        requireOffered(call, convKey(xd, wd, dyd, "bwdFilter"), algo, convDesc);
        workspace(call, algo, xd, workspace, workspaceBytes, s);
        access(call, "x", x, bytes(xd), s);
        access(call, "dy", dy, bytes(dyd), s);
        access(call, "dw", dw, bytes(wd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnConvolutionBackwardBias(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor dyDesc,
            Pointer dy, Pointer beta, cudnnTensorDescriptor dbDesc, Pointer db) {
        String call = "cudnnConvolutionBackwardBias";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] dyd = dims(call, "dyDesc", dyDesc);
        int[] dbd = dims(call, "dbDesc", dbDesc);
        sameShape(call, "dbDesc", dbd, "(1, channels of dy, 1, 1)", new int[]{1, dyd[1], 1, 1});
        access(call, "dy", dy, bytes(dyd), s);
        access(call, "db", db, bytes(dbd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnAddTensor(cudnnHandle handle, Pointer alpha, cudnnTensorDescriptor aDesc, Pointer A,
                                            Pointer beta, cudnnTensorDescriptor cDesc, Pointer C) {
        String call = "cudnnAddTensor";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] ad = dims(call, "aDesc", aDesc);
        int[] cd = dims(call, "cDesc", cDesc);
        for (int i = 0; i < 4; i++) {
            if (ad[i] != 1 && ad[i] != cd[i]) {
                throw new CudaCallViolation(call + ": " + shape(ad) + " does not broadcast to " + shape(cd));
            }
        }
        access(call, "A", A, bytes(ad), s);
        access(call, "C", C, bytes(cd), s);
        node(s);
    }

    private int[] bnShapes(String call, cudnnTensorDescriptor xDesc, cudnnTensorDescriptor yDesc, String yName,
                           cudnnTensorDescriptor paramDesc) {
        int[] x = dims(call, "xDesc", xDesc);
        sameShape(call, yName, dims(call, yName, yDesc), "xDesc", x);
        sameShape(call, "paramDesc", dims(call, "paramDesc", paramDesc), "(1, channels, 1, 1)", new int[]{1, x[1], 1, 1});
        if ((long) x[0] * x[2] * x[3] < 2) {
            throw new CudaCallViolation(call + ": one value per channel in " + shape(x) + " (CUDNN_STATUS_BAD_PARAM)");
        }
        return x;
    }

    @Override
    public synchronized void cudnnBatchNormalizationForwardTraining(cudnnHandle handle, int mode, Pointer alpha, Pointer beta,
            cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor paramDesc,
            Pointer scale, Pointer bias, double factor, Pointer runningMean, Pointer runningVariance, double epsilon,
            Pointer saveMean, Pointer saveInvVariance) {
        String call = "cudnnBatchNormalizationForwardTraining";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = bnShapes(call, xDesc, yDesc, "yDesc", paramDesc);
        long c = 4L * xd[1];
        if (!(epsilon >= 0.0)) { // CUDNN_BN_MIN_EPSILON is 0.0 in cuDNN 8 and 9 (it was 1e-5 before)
            throw new CudaCallViolation(call + ": epsilon " + epsilon + " below CUDNN_BN_MIN_EPSILON (0.0)");
        }
        if ((runningMean == null) != (runningVariance == null)) {
            throw new CudaCallViolation(call + ": running mean and variance must both be null or both be set");
        }
        access(call, "x", x, bytes(xd), s);
        access(call, "y", y, bytes(xd), s);
        access(call, "scale", scale, c, s);
        access(call, "bias", bias, c, s);
        if (runningMean != null) {
            access(call, "runningMean", runningMean, c, s);
            access(call, "runningVariance", runningVariance, c, s);
        }
        if (saveMean != null || saveInvVariance != null) {
            access(call, "saveMean", saveMean, c, s);
            access(call, "saveInvVariance", saveInvVariance, c, s);
        }
        node(s);
    }

    @Override
    public synchronized void cudnnBatchNormalizationForwardInference(cudnnHandle handle, int mode, Pointer alpha, Pointer beta,
            cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor paramDesc,
            Pointer scale, Pointer bias, Pointer estimatedMean, Pointer estimatedVariance, double epsilon) {
        String call = "cudnnBatchNormalizationForwardInference";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = dims(call, "xDesc", xDesc);
        sameShape(call, "yDesc", dims(call, "yDesc", yDesc), "xDesc", xd);
        sameShape(call, "paramDesc", dims(call, "paramDesc", paramDesc), "(1, channels, 1, 1)", new int[]{1, xd[1], 1, 1});
        long c = 4L * xd[1];
        if (!(epsilon >= 0.0)) { // CUDNN_BN_MIN_EPSILON is 0.0 in cuDNN 8 and 9 (it was 1e-5 before)
            throw new CudaCallViolation(call + ": epsilon " + epsilon + " below CUDNN_BN_MIN_EPSILON (0.0)");
        }
        access(call, "x", x, bytes(xd), s);
        access(call, "y", y, bytes(xd), s);
        access(call, "scale", scale, c, s);
        access(call, "bias", bias, c, s);
        access(call, "estimatedMean", estimatedMean, c, s);
        access(call, "estimatedVariance", estimatedVariance, c, s);
        node(s);
    }

    @Override
    public synchronized void cudnnBatchNormalizationBackward(cudnnHandle handle, int mode, Pointer alphaData, Pointer betaData,
            Pointer alphaParam, Pointer betaParam, cudnnTensorDescriptor xDesc, Pointer x, cudnnTensorDescriptor dyDesc, Pointer dy,
            cudnnTensorDescriptor dxDesc, Pointer dx, cudnnTensorDescriptor paramDesc, Pointer scale, Pointer dScale, Pointer dBias,
            double epsilon, Pointer savedMean, Pointer savedInvVariance) {
        String call = "cudnnBatchNormalizationBackward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = bnShapes(call, xDesc, dyDesc, "dyDesc", paramDesc);
        sameShape(call, "dxDesc", dims(call, "dxDesc", dxDesc), "xDesc", xd);
        long c = 4L * xd[1];
        if ((savedMean == null) != (savedInvVariance == null)) {
            throw new CudaCallViolation(call + ": saved mean and inverse variance must both be null or both be set");
        }
        access(call, "x", x, bytes(xd), s);
        access(call, "dy", dy, bytes(xd), s);
        access(call, "dx", dx, bytes(xd), s);
        access(call, "scale", scale, c, s);
        access(call, "dScale", dScale, c, s);
        access(call, "dBias", dBias, c, s);
        if (savedMean != null) {
            access(call, "savedMean", savedMean, c, s);
            access(call, "savedInvVariance", savedInvVariance, c, s);
        }
        node(s);
    }

    private int[] poolOutput(String call, cudnnPoolingDescriptor pooling, int[] x) {
        poolDescs.require(call, "pooling descriptor", pooling);
        int[] p = poolParams.get(pooling);
        if (p == null) {
            throw new CudaCallViolation(call + ": pooling descriptor never set");
        }
        return new int[]{x[0], x[1], (x[2] + 2 * p[3] - p[1]) / p[5] + 1, (x[3] + 2 * p[4] - p[2]) / p[6] + 1};
    }

    @Override
    public synchronized void cudnnPoolingForward(cudnnHandle handle, cudnnPoolingDescriptor pooling, Pointer alpha,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        String call = "cudnnPoolingForward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = dims(call, "xDesc", xDesc);
        int[] yd = dims(call, "yDesc", yDesc);
        sameShape(call, "yDesc", yd, "the pooling's output", poolOutput(call, pooling, xd));
        access(call, "x", x, bytes(xd), s);
        access(call, "y", y, bytes(yd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnPoolingBackward(cudnnHandle handle, cudnnPoolingDescriptor pooling, Pointer alpha,
            cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy, cudnnTensorDescriptor xDesc, Pointer x,
            Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx) {
        String call = "cudnnPoolingBackward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = dims(call, "xDesc", xDesc);
        int[] yd = dims(call, "yDesc", yDesc);
        sameShape(call, "yDesc", yd, "the pooling's output", poolOutput(call, pooling, xd));
        sameShape(call, "dyDesc", dims(call, "dyDesc", dyDesc), "yDesc", yd);
        sameShape(call, "dxDesc", dims(call, "dxDesc", dxDesc), "xDesc", xd);
        access(call, "y", y, bytes(yd), s);
        access(call, "dy", dy, bytes(yd), s);
        access(call, "x", x, bytes(xd), s);
        access(call, "dx", dx, bytes(xd), s);
        node(s);
    }

    private void activation(String call, cudnnActivationDescriptor d) {
        activationDescs.require(call, "activation descriptor", d);
        if (!activationModes.containsKey(d)) {
            throw new CudaCallViolation(call + ": activation descriptor never set");
        }
    }

    @Override
    public synchronized void cudnnActivationForward(cudnnHandle handle, cudnnActivationDescriptor act, Pointer alpha,
            cudnnTensorDescriptor xDesc, Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        String call = "cudnnActivationForward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        activation(call, act);
        int[] xd = dims(call, "xDesc", xDesc);
        sameShape(call, "yDesc", dims(call, "yDesc", yDesc), "xDesc", xd);
        access(call, "x", x, bytes(xd), s);
        access(call, "y", y, bytes(xd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnActivationBackward(cudnnHandle handle, cudnnActivationDescriptor act, Pointer alpha,
            cudnnTensorDescriptor yDesc, Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy, cudnnTensorDescriptor xDesc, Pointer x,
            Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx) {
        String call = "cudnnActivationBackward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        activation(call, act);
        int[] xd = dims(call, "xDesc", xDesc);
        for (Object[] o : new Object[][]{{"yDesc", yDesc}, {"dyDesc", dyDesc}, {"dxDesc", dxDesc}}) {
            sameShape(call, (String) o[0], dims(call, (String) o[0], (cudnnTensorDescriptor) o[1]), "xDesc", xd);
        }
        access(call, "y", y, bytes(xd), s);
        access(call, "dy", dy, bytes(xd), s);
        access(call, "x", x, bytes(xd), s);
        access(call, "dx", dx, bytes(xd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnSoftmaxForward(cudnnHandle handle, int algo, int mode, Pointer alpha, cudnnTensorDescriptor xDesc,
            Pointer x, Pointer beta, cudnnTensorDescriptor yDesc, Pointer y) {
        String call = "cudnnSoftmaxForward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] xd = dims(call, "xDesc", xDesc);
        sameShape(call, "yDesc", dims(call, "yDesc", yDesc), "xDesc", xd);
        access(call, "x", x, bytes(xd), s);
        access(call, "y", y, bytes(xd), s);
        node(s);
    }

    @Override
    public synchronized void cudnnSoftmaxBackward(cudnnHandle handle, int algo, int mode, Pointer alpha, cudnnTensorDescriptor yDesc,
            Pointer y, cudnnTensorDescriptor dyDesc, Pointer dy, Pointer beta, cudnnTensorDescriptor dxDesc, Pointer dx) {
        String call = "cudnnSoftmaxBackward";
        record(call);
        long s = boundStream(call, handle, cudnnHandles);
        int[] yd = dims(call, "yDesc", yDesc);
        sameShape(call, "dyDesc", dims(call, "dyDesc", dyDesc), "yDesc", yd);
        sameShape(call, "dxDesc", dims(call, "dxDesc", dxDesc), "yDesc", yd);
        access(call, "y", y, bytes(yd), s);
        access(call, "dy", dy, bytes(yd), s);
        access(call, "dx", dx, bytes(yd), s);
        node(s);
    }
}
