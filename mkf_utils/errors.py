"""One exception type for mistakes a user can fix; the CLI prints it as one line."""
from __future__ import annotations


class MKFError(Exception):
    """A user-facing error that names the problem and the fix.

    >>> str(MKFError("unknown model 'resnet19'", "pick one of `timm.list_models()`, e.g. 'resnet18'"))
    "unknown model 'resnet19'. Fix: pick one of `timm.list_models()`, e.g. 'resnet18'"
    """

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}. Fix: {fix}" if fix else problem)
