package dev.kiln.cuda;

import dev.kiln.backend.Backend;
import dev.kiln.backend.Buffer;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * A backend that runs every call twice: on a reference backend that computes (the CPU), whose results the caller
 * sees, and on a shadow backend that only has to make the same calls correctly (a {@link CudaBackend} on the
 * {@link CheckingCudaApi}, which computes nothing but checks every driver, cuBLAS and cuDNN call). So a suite written
 * against values (the conformance suite) drives every op of the shadow with its real arguments, while its value
 * assertions see the reference's results. Buffers are pairs. Exceptions: when the reference rejects a call the shadow
 * is called too and must reject it as well (a divergence is recorded, and the reference's exception is rethrown);
 * when only the shadow rejects a call, its exception is what the caller gets.
 */
final class ShadowedBackend implements InvocationHandler {

    /** A reference buffer and its shadow. */
    record Pair(Backend owner, Buffer reference, Buffer shadow) implements Buffer {
        @Override
        public long length() {
            return reference.length();
        }

        @Override
        public Backend backend() {
            return owner;
        }

        @Override
        public boolean isClosed() {
            return reference.isClosed();
        }

        @Override
        public void close() {
            reference.close();
            shadow.close();
        }
    }

    private final Backend reference;
    private final Backend shadow;
    private final Runnable afterClose;
    private Backend self;
    private final Set<String> called = Collections.synchronizedSet(new TreeSet<>());
    private final List<String> divergences = Collections.synchronizedList(new ArrayList<>());

    private ShadowedBackend(Backend reference, Backend shadow, Runnable afterClose) {
        this.reference = reference;
        this.shadow = shadow;
        this.afterClose = afterClose;
    }

    /** @param afterClose runs after both backends are closed (e.g. the stand-in's leak check) */
    static ShadowedBackend create(Backend reference, Backend shadow, Runnable afterClose) {
        ShadowedBackend h = new ShadowedBackend(reference, shadow, afterClose);
        h.self = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class}, h);
        return h;
    }

    Backend backend() {
        return self;
    }

    /** Names of the Backend methods called so far. */
    Set<String> called() {
        return new TreeSet<>(called);
    }

    /** Calls the reference rejected and the shadow accepted (or the other way round), with both outcomes. */
    List<String> divergences() {
        return new ArrayList<>(divergences);
    }

    @Override
    public Object invoke(Object proxy, Method m, Object[] args) throws Throwable {
        switch (m.getName()) {
            case "equals":
                return proxy == args[0];
            case "hashCode":
                return System.identityHashCode(proxy);
            case "toString":
                return "shadowed(" + reference.name() + " | " + shadow.name() + ")";
            case "name":
            case "description":
                return m.invoke(shadow);
            case "beginCapture":
                return null; // graph capture is exercised separately, on the shadow alone
            case "close":
                try {
                    reference.close();
                    shadow.close();
                } finally {
                    afterClose.run();
                }
                return null;
            default:
                break;
        }
        called.add(m.getName());
        Object[] refArgs = args == null ? null : args.clone();
        Object[] shadowArgs = args == null ? null : args.clone();
        if (args != null) {
            for (int i = 0; i < args.length; i++) {
                refArgs[i] = unwrap(args[i], true);
                shadowArgs[i] = unwrap(args[i], false);
            }
        }
        Object refResult;
        try {
            refResult = m.invoke(reference, refArgs);
        } catch (InvocationTargetException e) {
            Throwable refError = e.getCause();
            try {
                m.invoke(shadow, shadowArgs);
                divergences.add(m.getName() + ": the reference threw " + refError + ", the shadow accepted the call");
            } catch (InvocationTargetException shadowFailure) {
                Throwable se = shadowFailure.getCause();
                if (se instanceof AssertionError) {
                    throw se; // a checking violation: a real finding, not an argument check
                }
                if (se.getClass() != refError.getClass()) {
                    divergences.add(m.getName() + ": the reference threw " + refError.getClass().getSimpleName()
                            + ", the shadow " + se.getClass().getSimpleName() + " (" + se.getMessage() + ")");
                }
            }
            throw refError;
        }
        Object shadowResult;
        try {
            shadowResult = m.invoke(shadow, shadowArgs);
        } catch (InvocationTargetException e) {
            if (refResult instanceof Buffer b) {
                b.close();
            }
            throw e.getCause();
        }
        if (refResult instanceof Buffer rb) {
            return new Pair(self, rb, (Buffer) shadowResult);
        }
        return refResult;
    }

    private Object unwrap(Object a, boolean ref) {
        if (!ref && a instanceof float[] host) {
            return host.clone(); // the shadow's downloads read zeros: they must not land in the caller's array
        }
        if (a instanceof Pair p) {
            return ref ? p.reference() : p.shadow();
        }
        if (a instanceof Buffer[] arr) {
            Buffer[] out = new Buffer[arr.length];
            for (int i = 0; i < arr.length; i++) {
                out[i] = arr[i] instanceof Pair p ? (ref ? p.reference() : p.shadow()) : arr[i];
            }
            return out;
        }
        return a;
    }
}
