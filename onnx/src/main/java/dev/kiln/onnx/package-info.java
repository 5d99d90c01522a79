/**
 * ONNX for Kiln models: export of a module graph as an ONNX model (opset 17) and import of an ONNX graph as a Kiln
 * module. The protobuf classes in {@code dev.kiln.onnx.proto} are generated at build time from the {@code onnx.proto}
 * released with ONNX 1.12.0.
 */
package dev.kiln.onnx;
