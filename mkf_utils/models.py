"""Models by timm name, with a small-input stem for 32 px images.

``stem_stride`` changes only strides (never a parameter's shape), so a checkpoint of a small-input
model still loads with ``timm.create_model(name, num_classes=K).load_state_dict(sd)``:

- ResNet: the 7x7 stem conv gets stride ``stem_stride`` and the max-pool is removed
  (stock total stride 4 becomes ``stem_stride``).
- ConvNeXt (and other timm nets with a ``stem.0`` patchify conv), MobileNet and EfficientNet (``conv_stem``): the
  stem conv gets stride ``stem_stride`` with ``same`` padding (stride 1) or ``(k - s) // 2`` padding.

At 32 px with ``stem_stride=1`` the last stage of ResNet-18 and ConvNeXt sees 4x4 maps; stock stems
leave 1x1 (see ``benchmarks/throughput.py`` for the speed of each choice).

>>> m = create_model("convnext_atto", num_classes=4, stem_stride=1)
>>> m(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 4])
>>> create_model("mobilenetv2_050", num_classes=4, stem_stride=1).conv_stem.stride
(1, 1)
"""
from __future__ import annotations

import difflib
import warnings

import timm
import torch  # noqa: F401  (the doctest uses it)
from torch import nn

from .errors import MKFError


def _set_stem_stride(model: nn.Module, name: str, stride: int) -> None:
    if hasattr(model, "conv1") and hasattr(model, "maxpool"):  # timm ResNet family
        model.conv1.stride = (stride, stride)
        model.maxpool = nn.Identity()
        return
    stem = getattr(model, "stem", None)
    conv = stem[0] if isinstance(stem, nn.Sequential) and isinstance(stem[0], nn.Conv2d) else None
    if conv is None and isinstance(getattr(model, "conv_stem", None), nn.Conv2d):  # MobileNet / EfficientNet
        conv = model.conv_stem
    if conv is None:
        raise MKFError(f"model.stem_stride is not supported for '{name}'",
                       "leave model.stem_stride unset (null) and use larger inputs")
    k = conv.kernel_size[0]
    conv.stride = (stride, stride)
    conv.padding = "same" if stride == 1 else ((k - stride) // 2,) * 2


def create_model(name: str, num_classes: int, stem_stride: int | None = None, pretrained: bool = False,
                 **kwargs) -> nn.Module:
    """A timm model with ``num_classes`` outputs; ``stem_stride`` adapts it to small images.

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``resnet18``, ``convnext_tiny``.
        num_classes: size of the classifier.
        stem_stride: None for the stock stem, else the stem's total stride (1 or 2 for 32 px data).
        pretrained: load timm's pretrained weights (downloads; only when asked).
        **kwargs: passed to ``timm.create_model`` (``drop_path_rate``, ``kernel_sizes``, ...).
    """
    if name not in timm.list_models():
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise MKFError(f"unknown model '{name}'",
                       f"use a timm model name{', e.g. ' + ', '.join(close) if close else ''} (`timm.list_models()`)")
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise MKFError(f"model '{name}' rejects model.kwargs {kwargs} ({e})", "remove or rename those keys") from None
    except (OSError, RuntimeError) as e:
        if not pretrained:
            raise
        raise MKFError(f"could not fetch pretrained weights for '{name}' ({type(e).__name__})",
                       "set model.pretrained=false, or run where the Hugging Face hub is reachable") from None
    if stem_stride is not None:
        _set_stem_stride(model, name, stem_stride)
        # stride 1 with an even patch kernel: torch pads asymmetrically, which is what we want
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    return model
