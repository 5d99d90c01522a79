/**
 * Data sets and loading, independent of tensors: everything here produces host {@code float[]}s.
 *
 * <ul>
 * <li>{@link dev.kiln.data.IdxReader}: IDX files (gzip or raw), fully validated;
 *     failures are {@link dev.kiln.data.IdxFormatException}s naming file, field, expected and found.</li>
 * <li>{@link dev.kiln.data.MnistDirectory}: reads the four MNIST files of a directory into an
 *     {@link dev.kiln.data.ImageDataset} with its provenance (source line, file MD5s). Finding or fetching them
 *     (cache, download, npm subset) is the {@code kiln-datasets} module's {@code MnistLocator}: a library embedded in
 *     a service ships no HTTP client or subprocess it does not need.</li>
 * <li>{@link dev.kiln.data.DataLoader}: seeded per-epoch shuffling, batching, normalisation and a
 *     background prefetch thread over any {@link dev.kiln.data.Dataset}.</li>
 * </ul>
 */
package dev.kiln.data;
