/**
 * Kiln's API: tensors with autograd, layers, optimizers, data, training, inference and the backend SPI. Backends
 * (kiln.cpu, the CUDA jar) provide {@link dev.kiln.backend.BackendProvider}.
 */
module kiln.core {
    requires transitive org.slf4j;
    requires com.google.gson;

    exports dev.kiln.backend;
    exports dev.kiln.core;
    exports dev.kiln.data;
    exports dev.kiln.distributed;
    exports dev.kiln.inference;
    exports dev.kiln.io;
    exports dev.kiln.models;
    exports dev.kiln.nn;
    exports dev.kiln.nn.functional;
    exports dev.kiln.nn.init;
    exports dev.kiln.optim;
    exports dev.kiln.train;

    // Gson reads and writes the training history's records reflectively.
    opens dev.kiln.train to com.google.gson;

    uses dev.kiln.backend.BackendProvider;
}
