package dev.kiln.nn;

import java.util.List;

/**
 * A model whose {@code forward} is its layers applied in order ({@link LayerChain}): what lets inference rewrite it,
 * e.g. fold a batch norm into the convolution or linear layer before it.
 */
public interface LayerSequence {

    /** The layers in the order {@code forward} applies them. */
    List<Module> layers();
}
