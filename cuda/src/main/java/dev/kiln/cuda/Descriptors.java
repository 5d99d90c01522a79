package dev.kiln.cuda;

import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnTensorDescriptor;

import static jcuda.jcudnn.cudnnDataType.CUDNN_DATA_FLOAT;
import static jcuda.jcudnn.cudnnTensorFormat.CUDNN_TENSOR_NCHW;

/** Small helpers for cuDNN descriptors (host-side objects; safe to destroy right after the call that used them). */
final class Descriptors {

    private Descriptors() {
    }

    static cudnnTensorDescriptor tensor(CudaApi api, int n, int c, int h, int w) {
        cudnnTensorDescriptor d = new cudnnTensorDescriptor();
        api.cudnnCreateTensorDescriptor(d);
        api.cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w);
        return d;
    }

    static cudnnFilterDescriptor filter(CudaApi api, int k, int c, int h, int w) {
        cudnnFilterDescriptor d = new cudnnFilterDescriptor();
        api.cudnnCreateFilterDescriptor(d);
        api.cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, h, w);
        return d;
    }

    static void destroy(CudaApi api, cudnnTensorDescriptor... ds) {
        for (cudnnTensorDescriptor d : ds) {
            if (d != null) {
                api.cudnnDestroyTensorDescriptor(d);
            }
        }
    }
}
