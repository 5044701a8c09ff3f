"""`SkippedImages`: which files a dataset left out, and why, for the line every command ends with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

EMPTY = "empty file"
TRUNCATED = "truncated or damaged"
NOT_AN_IMAGE = "not an image"
TOO_LARGE = "too many pixels"
_EXAMPLES = 3


@dataclass(frozen=True)
class SkippedImages:
    """Files left out of a dataset, counted by reason, with a few example paths."""

    by_reason: dict[str, int] = field(default_factory=dict)  # reason -> number of files
    examples: tuple[str, ...] = ()  # the first few skipped paths
    files_seen: int = 0  # image files looked at (0: an in-memory dataset, nothing can be skipped)
    ignored_files: int = 0  # files in class folders without an image extension (notes.txt, .xml)

    @classmethod
    def of(cls, skipped: Iterable[tuple[str, str]], files_seen: int, ignored_files: int = 0) -> SkippedImages:
        """From `(path, reason)` pairs."""
        pairs = list(skipped)
        counts = Counter(reason for _, reason in pairs)
        return cls(dict(sorted(counts.items())), tuple(p for p, _ in pairs[:_EXAMPLES]), files_seen, ignored_files)

    @property
    def total(self) -> int:
        """Number of files left out."""
        return sum(self.by_reason.values())

    def summary(self) -> str:
        """`none skipped` or `skipped 3 of 66 image files: 1 empty file, 2 not an image (e.g. a/x.png, ...)`."""
        ignored = (f"; ignored {self.ignored_files} file{'s' if self.ignored_files != 1 else ''} "
                   f"without an image extension" if self.ignored_files else "")
        if not self.total:
            return "none skipped" + ignored
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.by_reason.items())
        more = ", ..." if self.total > len(self.examples) else ""
        return (f"skipped {self.total} of {self.files_seen} image files: {reasons} "
                f"(e.g. {', '.join(self.examples)}{more})" + ignored)

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total, "by_reason": dict(self.by_reason), "examples": list(self.examples),
                "files_seen": self.files_seen, "ignored_files": self.ignored_files}
