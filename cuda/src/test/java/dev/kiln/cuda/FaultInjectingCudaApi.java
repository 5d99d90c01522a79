package dev.kiln.cuda;

import jcuda.CudaException;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A {@link CudaApi} in front of a {@link CheckingCudaApi} that makes calls fail as a GPU can: one chosen call, or,
 * from {@link #stickyError()} on, every call, as after an illegal address or a failed launch (the error is "sticky":
 * the context is unusable and every later call returns it). Release calls (destroy, free, release, unload) still reach
 * the stand-in before they fail, so its leak report says whether the backend attempted every release.
 */
final class FaultInjectingCudaApi implements InvocationHandler {

    private static final Pattern RELEASE = Pattern.compile(".*(Destroy|Free|Release|Unload).*");

    private final CheckingCudaApi target;
    private final List<String> calls = new ArrayList<>();
    private boolean sticky;
    private int failAt = -1;

    private FaultInjectingCudaApi(CheckingCudaApi target) {
        this.target = target;
    }

    static FaultInjectingCudaApi over(CheckingCudaApi target) {
        return new FaultInjectingCudaApi(target);
    }

    CudaApi api() {
        return (CudaApi) Proxy.newProxyInstance(CudaApi.class.getClassLoader(), new Class<?>[]{CudaApi.class}, this);
    }

    /** Every call from now on fails with CUDA_ERROR_ILLEGAL_ADDRESS. */
    synchronized void stickyError() {
        sticky = true;
    }

    /** The call with this index (0 = the first made through this api) fails with CUDA_ERROR_LAUNCH_FAILED. */
    synchronized void failCall(int index) {
        failAt = index;
    }

    /** The names of the calls made so far, in order. */
    synchronized List<String> calls() {
        return List.copyOf(calls);
    }

    @Override
    public synchronized Object invoke(Object proxy, Method method, Object[] args) throws Throwable {
        String name = method.getName();
        int index = calls.size();
        calls.add(name);
        boolean release = RELEASE.matcher(name).matches();
        boolean fail = sticky || index == failAt;
        if (fail && !release) {
            throw new CudaException((sticky ? "CUDA_ERROR_ILLEGAL_ADDRESS" : "CUDA_ERROR_LAUNCH_FAILED") + " (injected at "
                    + name + ")");
        }
        Object result;
        try {
            result = method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
        if (fail) {
            throw new CudaException("CUDA_ERROR_ILLEGAL_ADDRESS (injected at " + name + ", after it released)");
        }
        return result;
    }
}
