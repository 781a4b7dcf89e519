"""The Qt binding must not drop references to None. PySide6 6.12.0 on Python 3.11 drops one at every
call of a method that returns nothing (6.11.2 does not): the app then dies with "Fatal Python error:
none_dealloc" after some thousands of such calls, at once when a grid field's boxes are drawn, or
later in a long session. On Python 3.12 and later None is immortal and this cannot happen."""

from __future__ import annotations

import sys

from PySide6.QtGui import QPen


def test_calls_returning_nothing_keep_none_alive(qapp):
    pen = QPen()
    before = sys.getrefcount(None)
    for _ in range(1000):
        pen.setCosmetic(True)
    assert abs(sys.getrefcount(None) - before) < 100, "this PySide6 build drops a reference to None per call"
