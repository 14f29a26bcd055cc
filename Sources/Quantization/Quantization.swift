// Module Quantization.
