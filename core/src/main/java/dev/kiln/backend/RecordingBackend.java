package dev.kiln.backend;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Graph capture for a backend without native graphs (the CPU): {@link #recorder()} is a {@link Backend} whose ops are
 * checked ({@link BackendChecks}) when they are recorded and kept as calls on the delegate with the same arguments;
 * {@link RecordedWork#replay()} makes those calls again, in order. What a recording means is defined by
 * {@link Backend#beginCapture()}; the delegate keeps the memory of buffers freed during the capture (and of buffers
 * allocated during it) out of circulation until {@code onClose} runs.
 *
 * <p>The recorder is one dynamic proxy over the SPI, not a method per op: an op added to {@link Backend} is recorded
 * as soon as it has its check.
 */
public final class RecordingBackend implements GraphCapture {

    /** The SPI methods that are not ops: answered or refused by the recorder itself. */
    private static final Set<String> NOT_RECORDED = Set.of("name", "description", "allocate", "allocateUninitialized",
            "upload", "download", "write", "synchronize", "beginCapture", "close");
    private static final Map<Method, Method> CHECKS = checks();

    private final Backend delegate;
    private final BackendChecks check;
    private final Runnable onEnd;
    private final Runnable onClose;
    private final List<Call> calls = new ArrayList<>();
    private final Set<Buffer> touched = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<Buffer, Buffer> pinned = new IdentityHashMap<>();
    private final UnaryOperator<Buffer> pin;
    private final Backend recorder;
    private boolean finished;

    /** One recorded op: the delegate's method and its arguments, buffers replaced by their pinned stand-ins. */
    private record Call(Method method, Object[] args) {
    }

    /**
     * @param delegate the backend that runs the work at replay
     * @param pin      makes a buffer of the delegate that shares {@code b}'s memory and stays usable after {@code b} is
     *                 closed (closing it must not free anything)
     * @param onEnd    called once when recording stops (end or abort): the delegate stops reserving freed memory
     * @param onClose  called once when the recorded work is closed or the capture aborted: reserved memory returns
     */
    public RecordingBackend(Backend delegate, UnaryOperator<Buffer> pin, Runnable onEnd, Runnable onClose) {
        this.delegate = delegate;
        this.check = new BackendChecks(delegate);
        this.pin = pin;
        this.onEnd = onEnd;
        this.onClose = onClose;
        this.recorder = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> invoke(method, args == null ? new Object[0] : args));
    }

    /** Each op of {@link Backend} with its check: the {@link BackendChecks} method of the same name and parameters. */
    private static Map<Method, Method> checks() {
        Map<Method, Method> m = new HashMap<>();
        for (Method op : Backend.class.getMethods()) {
            if (op.getDeclaringClass() != Backend.class || NOT_RECORDED.contains(op.getName())) {
                continue;
            }
            try {
                m.put(op, BackendChecks.class.getMethod(op.getName(), op.getParameterTypes()));
            } catch (NoSuchMethodException e) {
                throw new IllegalStateException("Backend." + op.getName() + " has no check in BackendChecks", e);
            }
        }
        return Map.copyOf(m);
    }

    @Override
    public Backend recorder() {
        return recorder;
    }

    private Object invoke(Method method, Object[] args) throws Throwable {
        if (method.getDeclaringClass() == Object.class) {
            return switch (method.getName()) {
                case "toString" -> "recording " + delegate;
                case "hashCode" -> System.identityHashCode(this);
                case "equals" -> args[0] == recorder;
                default -> throw new UnsupportedOperationException(method.getName());
            };
        }
        switch (method.getName()) {
            case "name":
                return delegate.name();
            case "description":
                return delegate.description() + " (recording)";
            case "allocate": {
                Buffer b = delegate.allocate((Long) args[0]);
                Buffer bPinned = pin(b);
                // allocate promises zeros, at every replay too
                record(FILL, new Object[] {bPinned, 0L, bPinned.length(), 0f});
                return b;
            }
            case "allocateUninitialized": {
                Buffer b = delegate.allocateUninitialized((Long) args[0]);
                pin(b);
                return b;
            }
            case "upload":
            case "download":
            case "write":
            case "synchronize":
                throw new GraphCaptureException(method.getName() + " during graph capture: captured work cannot"
                        + " exchange data with the host (read results after a replay; put inputs in place before it)");
            case "beginCapture":
                throw new IllegalStateException("a graph capture is already recording on this backend");
            case "close":
                // closing the recorder would close the delegate
                throw new UnsupportedOperationException("a recording backend is ended with end() or abort(), not closed");
            default:
                break;
        }
        if (finished) {
            throw new IllegalStateException("capture already ended");
        }
        try {
            CHECKS.get(method).invoke(check, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
        Object[] frozen = new Object[args.length];
        for (int i = 0; i < args.length; i++) {
            frozen[i] = freeze(args[i]);
        }
        record(method, frozen);
        return null;
    }

    private static final Method FILL;

    static {
        try {
            FILL = Backend.class.getMethod("fill", Buffer.class, long.class, long.class, float.class);
        } catch (NoSuchMethodException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The value a recorded call keeps: buffers pinned, arrays copied (the caller may reuse them). */
    private Object freeze(Object arg) {
        if (arg instanceof Buffer b) {
            return pin(b);
        }
        if (arg instanceof Buffer[] bs) {
            Buffer[] out = new Buffer[bs.length];
            for (int i = 0; i < bs.length; i++) {
                out[i] = bs[i] == null ? null : pin(bs[i]);
            }
            return out;
        }
        if (arg instanceof int[] a) {
            return a.clone();
        }
        if (arg instanceof long[] a) {
            return a.clone();
        }
        if (arg instanceof float[] a) {
            return a.clone();
        }
        return arg; // immutable: boxed primitives, enums, geometry and hyper-parameter records
    }

    private void record(Method method, Object[] args) {
        if (finished) {
            throw new IllegalStateException("capture already ended");
        }
        calls.add(new Call(method, args));
    }

    /**
     * The stand-in the recorded call will use for {@code b}: the caller may close {@code b} during or after the
     * capture (a step's temporaries), while the recorded work goes on using its memory, which the delegate reserves.
     */
    private Buffer pin(Buffer b) {
        touched.add(b);
        return pinned.computeIfAbsent(b, pin);
    }

    @Override
    public RecordedWork end() {
        finish();
        List<Call> work = List.copyOf(calls);
        List<Buffer> external = new ArrayList<>();
        for (Buffer b : touched) {
            if (!b.isClosed()) {
                external.add(b);
            }
        }
        return new RecordedWork() {
            private boolean closed;

            @Override
            public void replay() {
                if (closed) {
                    throw new GraphCaptureException("replay of closed recorded work");
                }
                for (Buffer b : external) {
                    if (b.isClosed()) {
                        throw new GraphCaptureException("a buffer of " + b.length() + " floats used by the recorded work"
                                + " was closed after the capture; keep every tensor the captured step uses open while"
                                + " the graph lives");
                    }
                }
                for (Call c : work) {
                    try {
                        c.method().invoke(delegate, c.args());
                    } catch (InvocationTargetException e) {
                        if (e.getCause() instanceof RuntimeException r) {
                            throw r;
                        }
                        if (e.getCause() instanceof Error err) {
                            throw err;
                        }
                        throw new IllegalStateException(e.getCause());
                    } catch (IllegalAccessException e) {
                        throw new IllegalStateException(e);
                    }
                }
            }

            @Override
            public int operations() {
                return work.size();
            }

            @Override
            public void close() {
                if (!closed) {
                    closed = true;
                    onClose.run();
                }
            }
        };
    }

    @Override
    public void abort() {
        finish();
        calls.clear();
        onClose.run();
    }

    private void finish() {
        if (finished) {
            throw new IllegalStateException("capture already ended");
        }
        finished = true;
        onEnd.run();
    }
}
