package dev.kiln.cuda;

import java.util.stream.Collectors;

/** Where a resource of the checking stand-in was created: the first frames of the backend's code that asked for it. */
final class CallSite {

    private static final StackWalker WALKER = StackWalker.getInstance();

    private CallSite() {
    }

    static String here() {
        return WALKER.walk(frames -> frames
                .filter(f -> f.getClassName().startsWith("dev.kiln.") && !isStandIn(f.getClassName()))
                .limit(3)
                .map(f -> simple(f.getClassName()) + "." + f.getMethodName() + ":" + f.getLineNumber())
                .collect(Collectors.joining(" <- ")));
    }

    private static boolean isStandIn(String cls) {
        return cls.equals(CheckingCudaApi.class.getName()) || cls.startsWith(CheckingCudaApi.class.getName() + "$")
                || cls.equals(NativeHandles.class.getName()) || cls.equals(DeviceMemoryMap.class.getName())
                || cls.equals(CallSite.class.getName());
    }

    private static String simple(String cls) {
        return cls.substring(cls.lastIndexOf('.') + 1);
    }
}
