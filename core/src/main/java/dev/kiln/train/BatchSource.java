package dev.kiln.train;

import dev.kiln.data.ArrayBatch;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;

import java.util.Collection;
import java.util.Iterator;

/** Where a {@link Trainer} takes its batches from: a {@link DataLoader} or the caller's {@code Iterable}. */
abstract class BatchSource {

    /** One batch as the trainer reads it: features and labels (float class indices), valid prefixes of size. */
    record View(float[] features, float[] labels, int size, int[] shape, int index) {
    }

    /** The batches of one epoch. */
    interface Epoch extends Iterator<View>, AutoCloseable {
        @Override
        void close();
    }

    /** Batches per epoch, or -1 when not known in advance. */
    abstract int batchesPerEpoch();

    /** The size of a full batch, or 0 when not known in advance. */
    abstract int batchSize();

    abstract Epoch epoch(int e);

    static BatchSource of(DataLoader loader) {
        return new BatchSource() {
            @Override
            int batchesPerEpoch() {
                return loader.batchesPerEpoch();
            }

            @Override
            int batchSize() {
                return loader.batchSize();
            }

            @Override
            Epoch epoch(int e) {
                DataLoader.Epoch epoch = loader.epoch(e);
                return new Epoch() {
                    @Override
                    public boolean hasNext() {
                        return epoch.hasNext();
                    }

                    @Override
                    public View next() {
                        Batch b = epoch.next();
                        return new View(b.features(), b.labels(), b.size(), b.shape(), b.index());
                    }

                    @Override
                    public void close() {
                        epoch.close();
                    }
                };
            }
        };
    }

    static BatchSource of(Iterable<ArrayBatch> batches) {
        return new BatchSource() {
            @Override
            int batchesPerEpoch() {
                return batches instanceof Collection<?> c ? c.size() : -1;
            }

            @Override
            int batchSize() {
                return 0;
            }

            @Override
            Epoch epoch(int e) {
                Iterator<ArrayBatch> it = batches.iterator();
                return new Epoch() {
                    private int index;

                    @Override
                    public boolean hasNext() {
                        return it.hasNext();
                    }

                    @Override
                    public View next() {
                        ArrayBatch b = it.next();
                        int[] labels = b.labels();
                        float[] asFloats = new float[labels.length];
                        for (int i = 0; i < labels.length; i++) {
                            asFloats[i] = labels[i];
                        }
                        return new View(b.features(), asFloats, b.size(), b.shape(), index++);
                    }

                    @Override
                    public void close() {
                        if (it instanceof AutoCloseable c) {
                            try {
                                c.close();
                            } catch (Exception ex) {
                                throw new IllegalStateException("closing the batch iterator failed: " + ex, ex);
                            }
                        }
                    }
                };
            }
        };
    }
}
