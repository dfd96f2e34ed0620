"""A font with Chinese glyphs for every PDF the suite writes (statements, settlement reports).

reportlab embeds (subsets) TrueType fonts; it cannot embed the CFF-outline Noto CJK fonts. The
TrueType CJK font comes from Debian (``fonts-wqy-microhei``, installed by ``make test`` and
``make demo`` setup). Without one, :func:`cjk_font` falls back to reportlab's built-in Adobe CID
font ``STSong-Light``, which is *not* embedded (a viewer must supply it): :func:`cjk_font_embedded`
says which case holds, so callers and tests can tell.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

CJK_FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
FALLBACK = "STSong-Light"
NAME = "ParkCJK"


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register (once) and return the reportlab name of a font that has Chinese glyphs."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    for path in CJK_FONT_FILES:
        if path.exists():
            pdfmetrics.registerFont(TTFont(NAME, str(path), subfontIndex=0))
            return NAME
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK))
    return FALLBACK


def cjk_font_embedded() -> bool:
    """True when PDFs carry the font itself (a TrueType file was found), not only its name."""
    return cjk_font() == NAME
