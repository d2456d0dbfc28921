"""Models in and out: safetensors + JSON, PyTorch, Keras 3 and ONNX.

    save(model, dir) / load(dir, impl=None)     a model directory; NumPy + safetensors only
    from_torch(module_or_state_dict, into=None) / to_torch(model)
    from_keras(model_layer_or_file, into=None)  / to_keras(model, path=None, mask_value=None)
    to_onnx(model, path, opset=17)

Every format's gate order is handled once, in its own module (torch: none needed; keras.py:
KERAS_ORDER; onnx.py: ONNX_ORDER). torch, keras and onnx are imported only when a function that
needs them is called, so `import longshort.io` costs nothing extra.
"""

from .adapt import StackView, as_stack
from .keras import from_keras, to_keras
from .onnx import to_onnx
from .store import load, save
from .torch import from_torch, to_torch

__all__ = [
    "StackView",
    "as_stack",
    "from_keras",
    "from_torch",
    "load",
    "save",
    "to_keras",
    "to_onnx",
    "to_torch",
]
