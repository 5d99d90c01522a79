package dev.kiln.backend;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * A {@link Backend} parameter that may be null, meaning "absent" as in PyTorch's optional arguments. Every other
 * reference parameter of the SPI is required; {@link BackendChecks} and the conformance suite read this annotation.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.PARAMETER)
public @interface Nullable {
}
