package dev.kiln.cpu;

import dev.kiln.backend.Activation;
import dev.kiln.backend.BatchNormGeometry;
import dev.kiln.backend.BinaryOp;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The non-convolution kernels of a ResNet step on its batch-norm shapes at batch 128, one thread, each variant timed
 * in thread CPU time (so other processes on a shared machine disturb it less than wall time), rounds alternating
 * between variants, the median reported: batch norm (training forward, backward, inference), ReLU and the residual
 * add, the ops in turn beside their fused forms. Not a test: run by hand,
 * {@code java --add-modules jdk.incubator.vector -cp ... dev.kiln.cpu.BatchNormBench [rounds]}.
 */
public final class BatchNormBench {

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        BatchNormGeometry[] shapes = {
                new BatchNormGeometry(128, 16, 28 * 28), new BatchNormGeometry(128, 32, 14 * 14),
                new BatchNormGeometry(128, 64, 7 * 7),
        };
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        System.out.println("kernels: " + SimdSupport.describe() + ", one thread, median of " + rounds
                + " rounds, microseconds per call (thread CPU time; the minimum is the least disturbed by other processes)");
        System.out.printf("%-22s %-40s %10s %10s%n", "shape (n,C,spatial)", "kernel", "min us", "median us");
        try (Parallel par = new Parallel(1)) {
            for (BatchNormGeometry g : shapes) {
                int n = (int) g.length();
                int c = g.channels();
                Random r = new Random(1);
                float[] x = new float[n], dy = new float[n], x2 = new float[n];
                for (int i = 0; i < n; i++) {
                    x[i] = (float) r.nextGaussian() + 0.3f;
                    dy[i] = (float) r.nextGaussian();
                    x2[i] = (float) r.nextGaussian();
                }
                float[] gamma = new float[c], beta = new float[c], rm = new float[c], rv = new float[c];
                for (int i = 0; i < c; i++) {
                    gamma[i] = 1f + 0.1f * i / c;
                    beta[i] = 0.05f * i / c;
                    rv[i] = 1f;
                }
                float[] y = new float[n], z = new float[n], dz = new float[n], dx = new float[n];
                float[] mean = new float[c], invStd = new float[c], dg = new float[c], db = new float[c];
                int[] shape = {n};
                Map<String, Runnable> kernels = new LinkedHashMap<>();
                kernels.put("bn forward (training)", () -> BatchNormKernels.forwardTraining(g, x, gamma, beta, 1e-5f, z,
                        mean, invStd, par));
                kernels.put("relu forward", () -> ActivationKernels.forward(Activation.RELU, z, y, n, par));
                kernels.put("bn+relu forward, fused", () -> BatchNormKernels.forwardTraining(g, Activation.RELU, x,
                        gamma, beta, 1e-5f, y, mean, invStd, par));
                kernels.put("bn backward", () -> BatchNormKernels.backward(g, x, dz, gamma, mean, invStd, dx, dg, db,
                        par));
                kernels.put("relu backward", () -> ActivationKernels.backward(Activation.RELU, z, y, dy, dz, n, par));
                kernels.put("bn+relu backward, fused", () -> BatchNormKernels.backward(g, Activation.RELU, x, y, dy,
                        gamma, mean, invStd, dx, dg, db, par));
                kernels.put("bn inference+relu", () -> BatchNormKernels.forwardInference(g, Activation.RELU, x, gamma,
                        beta, rm, rv, 1e-5f, y, par));
                kernels.put("add", () -> ElementwiseKernels.binary(BinaryOp.ADD, x, shape, x2, shape, z, shape, par));
                kernels.put("add+relu, fused", () -> ActivationKernels.addActivation(Activation.RELU, x, x2, y, n, par));
                Map<String, List<Double>> times = new LinkedHashMap<>();
                kernels.keySet().forEach(k -> times.put(k, new ArrayList<>()));
                int reps = Math.max(5, 20_000_000 / n);
                for (int round = -2; round < rounds; round++) {
                    for (Map.Entry<String, Runnable> k : kernels.entrySet()) {
                        long t0 = mx.getCurrentThreadCpuTime();
                        for (int i = 0; i < reps; i++) {
                            k.getValue().run();
                        }
                        double us = (mx.getCurrentThreadCpuTime() - t0) / 1e3 / reps;
                        if (round >= 0) {
                            times.get(k.getKey()).add(us);
                        }
                    }
                }
                String name = "(" + g.n() + "," + g.channels() + "," + g.spatial() + ")";
                times.forEach((k, v) -> {
                    v.sort(Double::compare);
                    System.out.printf("%-22s %-40s %10.1f %10.1f%n", name, k, v.get(0), v.get(v.size() / 2));
                });
            }
        }
    }
}
