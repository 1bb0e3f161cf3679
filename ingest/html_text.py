"""HTML → readable text: headings and paragraphs of an article or chapter, without page
furniture."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.documents import DocumentText, Section

# Page furniture that is never prose: removed with its content before any text is read.
# Lists (ul/ol) go too: in Wikipedia they are mostly link lists, galleries and references.
_DROP_TAGS = [
    "script", "style", "noscript", "template", "head", "nav", "table", "figure", "figcaption",
    "ul", "ol", "math", "svg", "button", "form", "input", "select", "textarea", "iframe",
    "object", "audio", "video", "canvas", "map", "footer",
]  # fmt: skip
_DROP_SELECTORS = [
    ".infobox", ".navbox", ".vertical-navbox", ".sidebar", ".toc", "#toc", ".mw-editsection",
    ".hatnote", ".dablink", ".rellink", ".mw-references", ".references", ".reflist",
    ".refbegin", ".mw-ref", ".reference", ".noprint", ".metadata", ".ambox", ".mbox-small",
    ".thumb", ".gallery", ".mw-empty-elt", ".mw-jump-link", ".catlinks", "[role=navigation]",
    "[role=note]", ".pg-boilerplate", "#pg-header", "#pg-footer", "#pg-machine-header",
    ".mw-footer", "#footer", ".pagenum", ".lnum", ".linenum", "a.noteref",
    "[epub\\:type=pagebreak]", "[role=doc-pagebreak]", "[epub\\:type=noteref]",
]  # fmt: skip
_DROP_SELECTOR = ", ".join(_DROP_SELECTORS)
_BLOCKS = "h1, h2, h3, h4, h5, h6, p, pre, dt, dd, blockquote, div"
_CONTAINERS = frozenset({"blockquote", "dd", "dt", "div"})
# Elements whose text is read on their own (or dropped), never as part of a container's text.
_STRUCTURAL = frozenset(
    {"h1", "h2", "h3", "h4", "h5", "h6", "p", "pre", "dt", "dd", "blockquote", "div", "section",
     "article", "details", "summary", "main", "aside", "header", "dl", "li", "center"}
)  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Section headings whose whole section is apparatus, not content (English and a few others).
_DROPPED_SECTIONS = {
    "see also", "references", "external links", "further reading", "notes", "bibliography",
    "sources", "footnotes", "citations", "notes and references", "references and notes",
    "works cited", "literature", "weblinks", "einzelnachweise", "siehe auch", "literatur",
    "voir aussi", "notes et références", "références", "liens externes", "véase también",
    "referencias", "enlaces externos", "bibliografía",
}  # fmt: skip
_BLANK_LINE = re.compile(r"\n\s*\n")
# mwoffliner wraps its "This article is issued from Wikipedia…" footer in these comments.
_NOINDEX = re.compile(r"<!--htdig_noindex-->.*?<!--/htdig_noindex-->", re.DOTALL)


# Elements HTML knows as empty: `<br/>` and `<br>` mean the same there.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr", "basefont", "bgsound", "frame", "keygen"}
)  # fmt: skip
# `<name attr="…" …/>`: an XML empty element (attribute values may hold "/" or ">").
_EMPTY_ELEMENT = re.compile(
    r"""<([A-Za-z][A-Za-z0-9:_.-]*)((?:\s+[^\s<>/="']+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+))?)*)\s*/>"""
)


def xhtml_to_html(markup: str) -> str:
    """XHTML as an HTML parser must see it: every empty element written `<x/>` closed at once.

    An HTML parser ignores the slash, so a valid XHTML `<title/>`, `<script src="a.js"/>` or
    `<iframe/>` would open an element that swallows the rest of the page as its raw text, and
    `<a id="p1"/>` would make the rest of it a link.
    """
    if "/>" not in markup:
        return markup

    def close(m: re.Match[str]) -> str:
        name = m.group(1)
        return m.group(0) if name.lower() in _VOID else f"<{name}{m.group(2)}></{name}>"

    return _EMPTY_ELEMENT.sub(close, markup)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _contains(node: LexborNode, other: LexborNode) -> bool:
    """Whether `other` lies inside `node` (blocks come in document order, so a container's next
    block is the only one that needs checking)."""
    target = node.mem_id
    parent = other.parent
    while parent is not None:
        if parent.mem_id == target:
            return True
        parent = parent.parent
    return False


def _own_text(node: LexborNode) -> str:
    """Text of a container outside the blocks nested in it (`<div>Intro <div>…</div></div>`)."""
    parts = [
        child.text(deep=True)
        for child in node.iter(include_text=True)
        if child.tag not in _STRUCTURAL and child.tag != "-comment"
    ]
    return _clean("".join(parts))


def html_to_text(html: str, title: str = "") -> DocumentText:
    """Readable text of an HTML page: paragraphs separated by blank lines, headings as sections.

    Headings are not part of the text; each becomes a Section covering the text under it (the
    lead, before any heading, is a section headed by the page title).
    """
    if "htdig_noindex" in html:
        html = _NOINDEX.sub("", html)
    tree = LexborHTMLParser(html)
    if not title:
        node = tree.css_first("title")
        title = _clean(node.text()) if node is not None else ""
    tree.strip_tags(_DROP_TAGS)
    if "<br" in html:
        for node in tree.css("br"):
            node.replace_with(" ")  # "line<br>line" reads as two words, not one
    for node in tree.css(_DROP_SELECTOR):
        node.decompose()
    root = tree.body or tree.root
    if root is None:
        return DocumentText(title=title, text="", sections=[])

    paragraphs: list[str] = []
    sections: list[Section] = []
    pos = 0  # length of the text joined so far
    heading, section_start = title, 0
    skip_level = 0  # while > 0: inside a dropped section of this heading level

    def close_section() -> None:
        if pos > section_start:
            sections.append(Section(heading=heading, start=section_start, end=pos))

    has_prose = False
    blocks = root.css(_BLOCKS)
    for i, node in enumerate(blocks):
        tag = node.tag
        level = _HEADINGS.get(tag or "", 0)
        if level:
            text = _clean(node.text(deep=True))
            if skip_level and level > skip_level:
                continue
            skip_level = 0
            if not text:
                continue
            if level == 1 and not paragraphs and (not title or text == title):
                # The page's own title heading (checked first: an article may be called
                # "Literature" or "Notes"): the lead section keeps the title.
                title = title or text
                heading = title
                continue
            if text.lower().rstrip(":") in _DROPPED_SECTIONS:
                skip_level = level
                continue
            close_section()
            heading, section_start = text, pos + (2 if paragraphs else 0)
            continue
        has_prose = True
        if skip_level:
            continue
        # A container that holds other blocks gives its text through them.
        if tag in _CONTAINERS and i + 1 < len(blocks) and _contains(node, blocks[i + 1]):
            text = _own_text(node)  # its nested blocks give the rest, in their turn
        else:
            text = _clean(node.text(deep=True))
        if not text:
            continue
        if paragraphs:
            pos += 2
        paragraphs.append(text)
        pos += len(text)
    if not has_prose:
        # Plain HTML with bare text (no <p>): blank lines separate its paragraphs.
        lines = [_clean(line) for line in _BLANK_LINE.split(root.text(deep=True))]
        paragraphs = [line for line in lines if line]
        pos = sum(len(p) for p in paragraphs) + 2 * max(len(paragraphs) - 1, 0)
        sections, heading, section_start = [], title, 0
    close_section()
    return DocumentText(title=title, text="\n\n".join(paragraphs), sections=sections)
