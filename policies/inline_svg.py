"""SVG made safe to inline into an HTML page.

Graphviz already escapes label text for XML. On top of that, the SVG is parsed and rebuilt from an allowlist:
only drawing elements survive, no `<script>`, `<foreignObject>` or `<style>`, no event-handler attributes, no
links or references other than to fragments of the document itself, no XML prologue, DOCTYPE or comments. So a
resource named `<script>…` or `" onload="…` is drawn as text and does nothing.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

ELEMENTS = {"svg", "g", "title", "desc", "text", "tspan", "path", "polygon", "polyline", "ellipse", "circle", "rect",
            "line", "defs", "a"}
ATTRIBUTES = {
    "id", "class", "width", "height", "viewBox", "transform", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r",
    "rx", "ry", "d", "points", "fill", "fill-opacity", "stroke", "stroke-width", "stroke-dasharray",
    "stroke-opacity", "font-family", "font-size", "font-weight", "font-style", "text-anchor", "preserveAspectRatio",
    "version", "role", "aria-label",
}
_SAFE_VALUE = re.compile(r"^[^<>]*$")
_NO_URL = re.compile(r"url\s*\(|javascript:|data:", re.IGNORECASE)


def safe_svg(svg: str) -> str:
    """The SVG document as one inline `<svg>` element: allowlisted elements and attributes only."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(svg)  # DOCTYPE, prologue and comments are dropped; entities beyond XML's are refused
    if _local(root.tag) != "svg":
        raise ValueError("not an SVG document")
    _clean(root)
    root.set("role", "img")
    root.set("aria-label", "architecture of the stack")
    return ET.tostring(root, encoding="unicode")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _clean(element: ET.Element) -> None:
    for child in list(element):
        if not isinstance(child.tag, str) or _local(child.tag) not in ELEMENTS \
                or not child.tag.startswith("{" + SVG_NS + "}"):
            element.remove(child)
            continue
        _clean(child)
    for name in list(element.attrib):
        value = element.attrib[name]
        local = _local(name)
        if local not in ATTRIBUTES or name.startswith("{") or not _SAFE_VALUE.match(value) or _NO_URL.search(value):
            del element.attrib[name]
    if _local(element.tag) == "a":  # links would need an href; Graphviz adds them only for URL attributes
        element.tag = "{" + SVG_NS + "}g"
