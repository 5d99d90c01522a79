package dev.kiln.spark;

import dev.kiln.distributed.CollectiveException;

/**
 * A connection to a member of a {@link SocketCollective} was refused: it did not prove it holds the job's secret,
 * claimed a rank it may not have, came from an address other than the one its rank announced, or broke the
 * handshake's format or time limit.
 */
public class CollectiveAuthenticationException extends CollectiveException {

    public CollectiveAuthenticationException(String message) {
        super(message);
    }

    public CollectiveAuthenticationException(String message, Throwable cause) {
        super(message, cause);
    }
}
