"""Progress bars for the training loop (tqdm on stderr).

No bar when stderr is not a terminal (tqdm's `disable=None`) or when the user asked
for `--quiet`; updates happen once per compiled call, never per step.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class Progress:
    def __init__(self, enabled: bool | None = None):
        # None: show a bar only on a terminal. False: never (--quiet, --json, tests).
        self._disable = None if enabled is None else not enabled
        self._bar = None

    def start(self, total: int, initial: int = 0, desc: str = "") -> None:
        self.close()
        self._bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit="step",
            file=sys.stderr,
            disable=self._disable,
            dynamic_ncols=True,
            leave=True,
        )

    @property
    def active(self) -> bool:
        return self._bar is not None

    def update(self, steps: int, **postfix) -> None:
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in postfix.items()}, refresh=False)
            self._bar.update(steps)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

