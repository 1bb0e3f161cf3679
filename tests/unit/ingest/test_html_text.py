"""html_to_text keeps an article's prose and headings and drops the page furniture around it."""

from __future__ import annotations

from ingest.html_text import html_to_text

# Shaped like mwoffliner's Wikipedia pages: sections in <details>/<section>, mw-ref markers.
WIKIPEDIA = """<!DOCTYPE html><html><head><title>Paris</title><style>p{}</style>
<script>var x = "script text";</script></head><body>
<h1>Paris</h1>
<div class="hatnote">For other uses, see Paris (disambiguation).</div>
<table class="infobox"><tr><th>Population</th><td>2,102,650</td></tr></table>
<p>Paris is the <b>capital</b> of France.<sup class="mw-ref reference" id="cite_ref-1">\
<a href="#cite_note-1">[1]</a></sup>
It lies on the Seine.</p>
<div id="toc" class="toc"><ul><li>History</li><li>Geography</li></ul></div>
<details open><summary><h2 id="History">History<span class="mw-editsection">[edit]</span></h2>\
</summary>
<p>The Parisii founded   the city.</p>
<figure><img src="x.png"/><figcaption>A map caption</figcaption></figure>
<ul><li>a list item</li></ul>
<section><h3>Middle Ages</h3><p>Paris grew in the Middle Ages.</p></section>
</details>
<details><summary><h2>See also</h2></summary><p>Lyon, Marseille</p>
<h3>Nested under see also</h3><p>Still apparatus</p></details>
<h2>Geography</h2><p>The city is flat.</p>
<h2>References</h2><div class="mw-references"><ol><li>Reference one</li></ol></div>
<p>Dangling paragraph under references</p>
<h2>External links</h2><p>Official site</p>
<table class="navbox"><tr><td>Capitals of Europe</td></tr></table>
</body></html>"""


def test_wikipedia_article_keeps_prose_and_drops_furniture() -> None:
    doc = html_to_text(WIKIPEDIA)
    assert doc.title == "Paris"
    assert doc.text.split("\n\n") == [
        "Paris is the capital of France. It lies on the Seine.",
        "The Parisii founded the city.",
        "Paris grew in the Middle Ages.",
        "The city is flat.",
    ]
    for gone in ("script text", "disambiguation", "2,102,650", "[1]", "edit", "list item",
                 "caption", "Lyon", "apparatus", "Reference one", "Dangling", "Official",
                 "Capitals of Europe"):  # fmt: skip
        assert gone not in doc.text


def test_sections_cover_the_text_under_each_heading() -> None:
    doc = html_to_text(WIKIPEDIA)
    spans = {s.heading: doc.text[s.start : s.end] for s in doc.sections}
    assert spans == {
        "Paris": "Paris is the capital of France. It lies on the Seine.",
        "History": "The Parisii founded the city.",
        "Middle Ages": "Paris grew in the Middle Ages.",
        "Geography": "The city is flat.",
    }
    assert "History" not in doc.text  # headings are recorded as sections, not text


def test_gutenberg_chapter_markup() -> None:
    html = """<html><body><div class="chapter"><h2>CHAPTER I.</h2>
    <p>It was a dark<br/>and stormy night<span class="pagenum">[Pg 7]</span>.</p>
    <div class="poem"><div class="stanza"><div>First line of verse,</div>
    <div>second line of verse.</div></div></div>
    <h3>A note</h3><p>Closing words.</p></div></body></html>"""
    doc = html_to_text(html, title="The Book")
    assert doc.text.split("\n\n") == [
        "It was a dark and stormy night.",
        "First line of verse,",
        "second line of verse.",
        "Closing words.",
    ]
    assert [s.heading for s in doc.sections] == ["CHAPTER I.", "A note"]


def test_plain_html_without_paragraph_tags() -> None:
    doc = html_to_text("<html><body>Just some text<br>on two lines</body></html>", title="T")
    assert doc.text == "Just some text on two lines"
    assert doc.sections[0].heading == "T"


def test_title_comes_from_the_page_when_not_given() -> None:
    doc = html_to_text(
        "<html><head><title> Honey  bee </title></head><body><p>Bees.</p></body></html>"
    )
    assert doc.title == "Honey bee"


def test_empty_and_furniture_only_pages_have_no_text() -> None:
    assert html_to_text("").text == ""
    assert html_to_text("<html><body><img src='cover.png'/></body></html>").text == ""
    assert html_to_text("<table class='infobox'><tr><td>x</td></tr></table>").text == ""


def test_unicode_and_rtl_text_survive() -> None:
    doc = html_to_text("<p>Беларуская мова</p><p>حسنًا! إن أردنا</p>")
    assert doc.text == "Беларуская мова\n\nحسنًا! إن أردنا"


def test_mwoffliner_footer_is_dropped() -> None:
    html = (
        "<p>Coffee is a drink.</p><!--htdig_noindex--><div><div>This article is issued from "
        "<a>Wikibooks</a>. The text is licensed under Creative Commons.</div></div>"
        "<!--/htdig_noindex--><footer><p>Footer text</p></footer>"
    )
    assert html_to_text(html).text == "Coffee is a drink."


def test_text_beside_nested_blocks_is_kept() -> None:
    html = '<div class="box"><div class="icon"></div><i>Welcome! This is a sandbox page.</i></div>'
    assert html_to_text(html).text == "Welcome! This is a sandbox page."


def test_an_article_named_like_an_apparatus_section_keeps_its_text() -> None:
    """The demo's "Literature" article (and any "Notes" or "Sources" page) is not dropped."""
    from ingest.html_text import html_to_text

    page = "<h1>Literature</h1><p>Literature is any collection of written work.</p>"
    page += "<h2>References</h2><p>Smith 2001.</p>"
    doc = html_to_text(page, "Literature")
    assert doc.text == "Literature is any collection of written work."
