"""Deployment: ONNX export with a parity gate, INT8/FP16 ONNX, TensorRT engines, torch.export programs.

Importing this package loads neither onnxruntime nor tensorrt; they load inside the functions.

>>> from fa_compress.export import export_onnx, check_parity, enforce, quantize_int8
>>> from fa_compress.export import ExportOptions, export_run    # the whole `facompress export` stage
>>> from fa_compress.export import export_torch_program, check_program_parity   # a .pt2 for plain PyTorch
"""

from .onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, OnnxExport, export_onnx, onnx_metadata, read_metadata
from .parity import FP16_TOLERANCE, FP32_TOLERANCE, INT8_TOLERANCE, ParityReport, Tolerance, check_parity, enforce
from .quantize import INT8_FORMS, Int8Form, QuantizedExport, convert_fp16, quantize_int8
from .torch_program import TorchProgramExport, check_program_parity, export_torch_program
from .pipeline import AccuracyComparison, ExportOptions, ExportResult, export_run
from ._records import to_record

__all__ = [
    "DEFAULT_OPSET", "MAX_OPSET", "MIN_OPSET", "OnnxExport", "export_onnx", "onnx_metadata", "read_metadata",
    "FP16_TOLERANCE", "FP32_TOLERANCE", "INT8_TOLERANCE", "ParityReport", "Tolerance", "check_parity", "enforce",
    "INT8_FORMS", "Int8Form", "QuantizedExport", "convert_fp16", "quantize_int8", "to_record",
    "AccuracyComparison", "ExportOptions", "ExportResult", "export_run",
    "TorchProgramExport", "check_program_parity", "export_torch_program",
]
