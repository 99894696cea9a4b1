"""Filter-transfer experiments for "The Master Key Filters Hypothesis: Deep Filters Are General".

One concept per module: :mod:`~mkf_utils.data` (datasets and loaders), :mod:`~mkf_utils.splits`
(class splits), :mod:`~mkf_utils.models` (timm models), :mod:`~mkf_utils.units` (transfer units),
:mod:`~mkf_utils.transfer` (copy and freeze), :mod:`~mkf_utils.config` (run configs),
:mod:`~mkf_utils.train` (``fit``), :mod:`~mkf_utils.runs` (the run store), :mod:`~mkf_utils.plans`
(experiments as lists of runs), :mod:`~mkf_utils.experiments` (plans run), :mod:`~mkf_utils.plots`
(summaries and charts), :mod:`~mkf_utils.cli` (``mkf``).
"""
from .errors import MKFError

__version__ = "0.1.0"
__all__ = ["MKFError", "__version__"]
